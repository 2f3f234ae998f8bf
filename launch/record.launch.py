"""
Recorder alone: the stack's topics into a rosbag2 (MCAP) bag that ohio relabel reads.

Usage: ros2 launch ohio_ros record.launch.py bag:=/data/run1 gravity_compensation:=driver

gravity_compensation is the running controller's (no default: on a Franka it is 'driver', and the
recorded commands then lack g(q)); the bag's metadata keeps it, with the robot, for ohio relabel.
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
        DeclareLaunchArgument('robot', default_value='panda',
                              description='the arm: a robot of config/robots or a robot file'),
        DeclareLaunchArgument('gravity_compensation', choices=['driver', 'controller'],
                              description="the controller's: driver (the commands lack g(q)) or "
                                          'controller'),
        Node(package='ohio_ros', executable='recorder_node', name='recorder', output='screen',
             parameters=[PathJoinSubstitution([config, 'recorder.yaml']),
                         {'use_sim_time': LaunchConfiguration('use_sim_time'),
                          'output': ParameterValue(LaunchConfiguration('bag'), value_type=str),
                          'storage': ParameterValue(LaunchConfiguration('storage'),
                                                    value_type=str),
                          'robot': ParameterValue(LaunchConfiguration('robot'), value_type=str),
                          'gravity_compensation': ParameterValue(
                              LaunchConfiguration('gravity_compensation'), value_type=str)}]),
    ])
