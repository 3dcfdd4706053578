"""ament_python package xembody_ros: the xembody nodes as ROS 2 executables.

`ros2 run xembody_ros policy_node --ros-args -p policy:=DIR` runs
`xembody.real.ros.policy.main` (the xembody package must be importable by the Python that
colcon builds with). The launch files and parameter files of ../../../launch are installed
into share/xembody_ros so `ros2 launch xembody_ros arm.launch.py` finds them.
"""

import os
from pathlib import Path

from setuptools import setup

PACKAGE = "xembody_ros"
HERE = Path(__file__).resolve().parent
LAUNCH = HERE.parents[2] / "launch"  # the repository's launch/ folder
NODES = ("policy", "safety", "sim_robot", "recorder", "camera")


def files(folder: Path, pattern: str) -> list[str]:
    return sorted(os.path.relpath(p, HERE) for p in folder.glob(pattern))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", files(LAUNCH, "*.py")),
        (f"share/{PACKAGE}/launch/config", files(LAUNCH / "config", "*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="xembody",
    maintainer_email="xembody@example.com",
    description="ROS 2 nodes running xembody policies (policy, safety, sim robot, recorder)",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{n}_node = xembody.real.ros.{n}:main" for n in NODES],
    },
)
