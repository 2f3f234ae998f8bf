"""colcon/ament_python build of the repository's `controllers` Python package (linked here)."""

from setuptools import find_packages, setup

package_name = 'controllers'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='OHIO stack maintainers',
    maintainer_email='ohio-stack@example.com',
    description='OHIO stack core package controllers (see package.xml)',
    license='TODO',
)
