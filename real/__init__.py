"""Robot side: the robot interface, real-proxy, safety filter and input validation, the
policy controller, action adaptation, data collection, teleoperation and the ROS 2 nodes.
May import models and sim, never the CLI."""
