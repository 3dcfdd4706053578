"""ROS 2 nodes over `xembody.real` (the only subpackage that imports rclpy).

Each node is one module with a `main()`: `python -m xembody.real.ros.<node>` (sim_robot,
policy, safety, recorder), or the console scripts of the ament_python package in
ros2_ws/src/xembody_ros. See docs/ROS.md.
"""
