"""
Simulated arm: MuJoCo simulator, 50 Hz controller, high-level policy, optional recorder.

All nodes but the simulator run on simulated time (the simulator publishes /clock). The
simulator adds no gravity compensation of its own, so the controller's command holds g(q)
(controller.gravity_compensation: controller).

    ros2 launch ohio_ros sim_arm.launch.py                          # scripted reach expert
    ros2 launch ohio_ros sim_arm.launch.py policy:=model model_path:=/path/to/model task:=lift
    ros2 launch ohio_ros sim_arm.launch.py record:=true bag:=/tmp/run1
    ros2 launch ohio_ros sim_arm.launch.py real_time_factor:=0 lockstep:=true publish_rate:=50
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare('ohio_ros'), 'config'])
    use_sim_time = LaunchConfiguration('use_sim_time')
    task = ParameterValue(LaunchConfiguration('task'), value_type=str)
    robot = ParameterValue(LaunchConfiguration('robot'), value_type=str)
    return LaunchDescription([
        DeclareLaunchArgument('robot', default_value='panda',
                              description='the arm: a robot of config/robots or a robot file'),
        DeclareLaunchArgument('task', default_value='reach',
                              description='reach or lift (simulated scene, scripted expert)'),
        DeclareLaunchArgument('policy', default_value='scripted',
                              description='scripted (expert of the task) or model'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='trained goal-level model (with policy:=model)'),
        DeclareLaunchArgument('use_sim_time', default_value='true',
                              description='controller, policy and recorder follow /clock'),
        DeclareLaunchArgument('record', default_value='false',
                              description='also run the recorder (rosbag2, MCAP)'),
        DeclareLaunchArgument('bag', default_value='',
                              description="bag folder of the recorder ('' = ohio_bag_<time>)"),
        DeclareLaunchArgument('real_time_factor', default_value='1.0',
                              description='simulator pace: 1 wall clock, 0 as fast as possible'),
        DeclareLaunchArgument('lockstep', default_value='false',
                              description='simulator waits for a command in every control period'),
        DeclareLaunchArgument('publish_rate', default_value='500.0',
                              description='joint states and /clock per second (50 for lockstep)'),
        Node(package='ohio_ros', executable='mujoco_sim_node', name='mujoco_sim',
             output='screen',
             parameters=[PathJoinSubstitution([config, 'mujoco_sim.yaml']),
                         {'task': task, 'robot': robot,
                          'real_time_factor': LaunchConfiguration('real_time_factor'),
                          'lockstep': LaunchConfiguration('lockstep'),
                          'publish_rate': LaunchConfiguration('publish_rate')}]),
        Node(package='ohio_ros', executable='controller_node', name='controller',
             output='screen',
             parameters=[PathJoinSubstitution([config, 'controller.yaml']),
                         {'use_sim_time': use_sim_time, 'robot': robot,
                          'controller.gravity_compensation': 'controller'}]),
        Node(package='ohio_ros', executable='policy_node', name='policy', output='screen',
             parameters=[PathJoinSubstitution([config, 'policy.yaml']),
                         {'use_sim_time': use_sim_time, 'task': task, 'robot': robot,
                          'policy': ParameterValue(LaunchConfiguration('policy'), value_type=str),
                          'model_path': ParameterValue(LaunchConfiguration('model_path'),
                                                       value_type=str)}]),
        Node(package='ohio_ros', executable='recorder_node', name='recorder', output='screen',
             condition=IfCondition(LaunchConfiguration('record')),
             parameters=[PathJoinSubstitution([config, 'recorder.yaml']),
                         {'use_sim_time': use_sim_time, 'robot': robot,
                          'gravity_compensation': 'controller',
                          'output': ParameterValue(LaunchConfiguration('bag'), value_type=str)}]),
    ])
