r"""
Fleet rebalancing: routing simulator, rebalancing LP (low level) and routing policy (high level).

The simulator publishes routing/state after every step and applies the routing/flows the
rebalancing node computes from the routing/desired_distribution of the policy node. Parameters
of all three come from one file (params_file, keyed by node name); the arguments below override
some of them. Topics are remappable (state:=..., flows:=..., ...).

    ros2 launch ohio_ros routing.launch.py                                  # demand_proportional
    ros2 launch ohio_ros routing.launch.py heuristic:=random_distribution
    ros2 launch ohio_ros routing.launch.py policy:=model model_path:=/path/to/model \\
        scenario_file:=/path/to/scenario.json
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare('ohio_ros'), 'config'])
    params_file = LaunchConfiguration('params_file')
    state = ('routing/state', LaunchConfiguration('state'))
    flows = ('routing/flows', LaunchConfiguration('flows'))
    goal = ('routing/desired_distribution', LaunchConfiguration('desired_distribution'))
    travel_time = ('routing/travel_time', LaunchConfiguration('travel_time'))
    step_info = ('routing/step_info', LaunchConfiguration('step_info'))
    return LaunchDescription([
        DeclareLaunchArgument('params_file',
                              default_value=PathJoinSubstitution([config, 'routing.yaml']),
                              description='parameters of the three nodes, keyed by node name'),
        DeclareLaunchArgument('scenario_file', default_value='',
                              description="AMoD scenario JSON ('' = the synthetic city)"),
        DeclareLaunchArgument('policy', default_value='heuristic',
                              description='heuristic or model'),
        DeclareLaunchArgument('heuristic', default_value='demand_proportional',
                              description='demand_proportional, random_distribution or uniform'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='trained routing goal model (with policy:=model)'),
        DeclareLaunchArgument('state', default_value='routing/state',
                              description='state topic (simulator -> policy, rebalancing)'),
        DeclareLaunchArgument('flows', default_value='routing/flows',
                              description='flows topic (rebalancing -> simulator)'),
        DeclareLaunchArgument('desired_distribution',
                              default_value='routing/desired_distribution',
                              description='goal topic (policy -> rebalancing)'),
        DeclareLaunchArgument('travel_time', default_value='routing/travel_time',
                              description='travel times of the network (latched)'),
        DeclareLaunchArgument('step_info', default_value='routing/step_info',
                              description='per-step reward, requests, served'),
        Node(package='ohio_ros', executable='routing_sim_node', name='routing_sim',
             output='screen',
             parameters=[params_file,
                         {'scenario_file': ParameterValue(LaunchConfiguration('scenario_file'),
                                                          value_type=str)}],
             remappings=[state, flows, travel_time, step_info]),
        Node(package='ohio_ros', executable='rebalancing_node', name='rebalancing',
             output='screen', parameters=[params_file],
             remappings=[state, flows, goal, travel_time]),
        Node(package='ohio_ros', executable='routing_policy_node', name='routing_policy',
             output='screen',
             parameters=[params_file,
                         {'policy': ParameterValue(LaunchConfiguration('policy'), value_type=str),
                          'heuristic': ParameterValue(LaunchConfiguration('heuristic'),
                                                      value_type=str),
                          'model_path': ParameterValue(LaunchConfiguration('model_path'),
                                                       value_type=str)}],
             remappings=[state, goal]),
    ])
