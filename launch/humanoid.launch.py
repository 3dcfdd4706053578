"""ROS 2 launch file: the xembody graph for a humanoid (launch/config/humanoid.yaml).

    ros2 launch launch/humanoid.launch.py [policy:=DIR] [params:=FILE] [sim:=false] [record:=true]

Without a full ROS 2 install: `xembody launch humanoid` starts the same nodes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xembody_graph import graph  # noqa: E402


def generate_launch_description():
    return graph("humanoid")
