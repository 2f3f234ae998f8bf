r"""
Real arm: 50 Hz controller and high-level policy against a robot driver's topics (no sim).

The driver (e.g. ros2_control with a joint_state_broadcaster and a forward effort controller)
provides /joint_states and consumes the effort commands; something provides ohio/task_state
(object pose and target, layout in ohio_core/data/topics.py). Remap to the driver's names, and
say who adds gravity compensation (required, no default):

    ros2 launch ohio_ros real_arm.launch.py model_path:=/path/to/model \\
        gravity_compensation:=driver \\
        joint_states:=/franka/joint_states effort_commands:=/effort_controller/commands

gravity_compensation: a Franka's torque interface (libfranka, and franka_ros2's effort command
interface) adds the arm's gravity torque g(q) to every command itself: use ``driver``, and the
controller leaves g(q) out of its command (at rest it commands zero). ``controller`` is for a
driver that applies the command as it is (a bare motor torque interface, a simulator without
gravity compensation): the command then holds g(q). The wrong choice pushes the arm with twice
its weight, or drops it; hence no default.

torque_rate_limit (N m/s per joint, default 1000): every command changes by at most this per
period and the first ramps up from zero, as a Franka requires (it stops on a torque rate above
1000 N m/s); 0 turns the limit off.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare('ohio_ros'), 'config'])
    use_sim_time = LaunchConfiguration('use_sim_time')
    inputs = [('/joint_states', LaunchConfiguration('joint_states')),
              ('ohio/task_state', LaunchConfiguration('task_state'))]
    robot = ParameterValue(LaunchConfiguration('robot'), value_type=str)
    return LaunchDescription([
        DeclareLaunchArgument('robot', default_value='panda',
                              description='the arm: a robot of config/robots or a robot file'),
        DeclareLaunchArgument('policy', default_value='model',
                              description='model (trained, model_path) or scripted'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='trained goal-level model'),
        DeclareLaunchArgument('controller_params',
                              default_value=PathJoinSubstitution([config, 'controller.yaml']),
                              description='controller parameters (gains, timeouts, joints)'),
        DeclareLaunchArgument('joint_states', default_value='/joint_states',
                              description="the driver's joint state topic"),
        DeclareLaunchArgument('effort_commands', default_value='effort_controller/commands',
                              description="the driver's effort command topic"),
        DeclareLaunchArgument('task_state', default_value='ohio/task_state',
                              description='task state topic (object pose, target)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='true when the driver is a simulator with /clock'),
        DeclareLaunchArgument('gravity_compensation', choices=['driver', 'controller'],
                              description='who adds g(q) to the effort commands: driver '
                                          '(Franka: libfranka, franka_ros2) or controller'),
        DeclareLaunchArgument('torque_rate_limit', default_value='1000.0',
                              description='N m/s per joint a command may change at most (0: off)'),
        Node(package='ohio_ros', executable='controller_node', name='controller',
             output='screen',
             parameters=[LaunchConfiguration('controller_params'),
                         {'use_sim_time': use_sim_time, 'robot': robot,
                          'controller.gravity_compensation': ParameterValue(
                              LaunchConfiguration('gravity_compensation'), value_type=str),
                          'torque_rate_limit': ParameterValue(
                              LaunchConfiguration('torque_rate_limit'), value_type=float)}],
             remappings=[('/joint_states', LaunchConfiguration('joint_states')),
                         ('effort_controller/commands', LaunchConfiguration('effort_commands'))]),
        Node(package='ohio_ros', executable='policy_node', name='policy', output='screen',
             parameters=[PathJoinSubstitution([config, 'policy.yaml']),
                         {'use_sim_time': use_sim_time, 'robot': robot,
                          'policy': ParameterValue(LaunchConfiguration('policy'), value_type=str),
                          'model_path': ParameterValue(LaunchConfiguration('model_path'),
                                                       value_type=str)}],
             remappings=inputs),
    ])
