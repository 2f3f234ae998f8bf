"""ament_python package ohio_ros: the stack's ROS 2 nodes, launch files and parameters."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'ohio_ros'
share = 'share/' + package_name

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        (share, ['package.xml']),
        (share + '/config', sorted(glob('config/*.yaml'))),
        # launch/ and urdf/ link to the repository's top-level folders
        (share + '/launch', sorted(glob('launch/*.launch.py'))),
        (share + '/urdf', ['urdf/panda.urdf', 'urdf/LICENSE', 'urdf/README.md']),
        (share + '/urdf/meshes/collision', sorted(glob('urdf/meshes/collision/*.stl'))),
        # robots/ links to config/robots (panda.yaml's ../../urdf/panda.urdf: share/urdf)
        (share + '/config/robots', sorted(glob('robots/*.yaml'))),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='OHIO stack maintainers',
    maintainer_email='ohio-stack@example.com',
    description='ROS 2 nodes of the OHIO stack (see package.xml)',
    license='TODO',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'controller_node = ohio_ros.arm.controller_node:main',
            'policy_node = ohio_ros.arm.policy_node:main',
            'mujoco_sim_node = ohio_ros.arm.mujoco_sim_node:main',
            'recorder_node = ohio_ros.arm.recorder_node:main',
            'routing_sim_node = ohio_ros.routing.sim_node:main',
            'rebalancing_node = ohio_ros.routing.rebalancing_node:main',
            'routing_policy_node = ohio_ros.routing.policy_node:main',
        ],
    },
)
