"""The xembody node graph as a ROS 2 launch description (shared by the *.launch.py files).

Needs a full ROS 2 install (the `launch` and `launch_ros` packages) and the xembody_ros
package built with colcon (ros2_ws/). On a pip-only machine, `xembody launch <class>` starts
the same graph from the same parameter files.
"""

from __future__ import annotations

from pathlib import Path

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

CONFIG = Path(__file__).resolve().parent / "config"


def _nodes(context: LaunchContext) -> list[Node]:
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    params: list = [value("params")]
    if value("policy"):
        params.append({"policy": value("policy")})
    nodes = [("safety", "safety_node"), ("policy", "policy_node")]
    if value("sim").lower() == "true":
        nodes.insert(0, ("sim_robot", "sim_robot_node"))
    if value("record").lower() == "true":
        nodes.append(("recorder", "recorder_node"))
    return [
        Node(package="xembody_ros", executable=exe, name=name, parameters=params, output="screen")
        for name, exe in nodes
    ]


def graph(body_class: str) -> LaunchDescription:
    """Sim robot (unless sim:=false: your ros2_control driver instead), safety, policy and,
    with record:=true, the recorder, all reading launch/config/<body_class>.yaml."""
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params", default_value=str(CONFIG / f"{body_class}.yaml"),
                description="ROS 2 parameter file for every node",
            ),
            DeclareLaunchArgument(
                "policy", default_value="", description="export folder (default: the params')"
            ),
            DeclareLaunchArgument(
                "sim", default_value="true", description="start the sim robot node"
            ),
            DeclareLaunchArgument(
                "record", default_value="false", description="start the recorder node"
            ),
            OpaqueFunction(function=_nodes),
        ]
    )  # fmt: skip
