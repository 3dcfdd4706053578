"""Robot side: the robot interface, real-proxy, safety filter and input validation, the
policy controller, action adaptation, data collection, teleoperation, the ROS 2 nodes, and
perception of scans into scene descriptions (real/perception).
May import models and sim, never the CLI."""
