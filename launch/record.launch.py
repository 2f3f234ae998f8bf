"""
Recorder alone: the stack's topics into a rosbag2 (MCAP) bag that ohio relabel reads.

Usage: ros2 launch ohio_ros record.launch.py bag:=/data/run1 use_sim_time:=true
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare('ohio_ros'), 'config'])
    return LaunchDescription([
        DeclareLaunchArgument('bag', default_value='',
                              description="bag folder ('' = ohio_bag_<time>); must not exist"),
        DeclareLaunchArgument('storage', default_value='mcap', description='mcap or sqlite3'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='stamp messages with /clock time'),
        Node(package='ohio_ros', executable='recorder_node', name='recorder', output='screen',
             parameters=[PathJoinSubstitution([config, 'recorder.yaml']),
                         {'use_sim_time': LaunchConfiguration('use_sim_time'),
                          'output': ParameterValue(LaunchConfiguration('bag'), value_type=str),
                          'storage': ParameterValue(LaunchConfiguration('storage'),
                                                    value_type=str)}]),
    ])
