"""ROS 2 launch file: the xembody graph for a mobile base (launch/config/mobile_base.yaml).

    ros2 launch launch/mobile_base.launch.py [policy:=DIR] [params:=FILE]
        [sim:=false] [record:=true]

Without a full ROS 2 install: `xembody launch mobile_base` starts the same nodes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xembody_graph import graph  # noqa: E402


def generate_launch_description():
    return graph("mobile_base")
