"""ROS 2 layer of the OHIO stack: thin rclpy nodes over ohio_core and controllers."""
