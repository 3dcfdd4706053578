"""`xembody teleop`: drive an arm body, in sim or on a ROS 2 robot, with a teleoperation
device and record the episodes into a zarr dataset (see docs/TELEOP.md and docs/DATASET.md).

    xembody teleop --body arm --device keyboard --out demos.zarr
    xembody teleop --device browser --port 8765          # then open http://127.0.0.1:8765/
    xembody teleop --device teacher --episodes 100 --no-realtime --seconds 0 --randomize \
        --ik-iterations 2 --ik-max-step 0.1 --ik-from-measured --action-noise 0.3 \
        --out demos.zarr                                   # BC demos (train-bc --no-only-success)
    xembody teleop --body arm6.urdf --ee tool0 --device keyboard   # a robot file (+ --card)
    xembody teleop --list-devices
    xembody teleop --ros --body arm --device browser --recorder /recorder --out robot.zarr
        # a ROS 2 robot, through the safety node (python -m xembody.real.ros.safety) to its
        # controller; the recorder node's episodes (cameras) follow the session's

An existing --out is opened for appending (resume). With --ros the body must be the
robot's (its joints are checked by name against the joint states); the device's command is
also published on --teleop-topic, for the ROS 2 recorder node.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from xembody.config import add_arguments, field, from_args


@dataclass(kw_only=True)
class TeleopConfig:
    body: str = field("arm", "body class (sampled with --body-seed) or an MJCF/URDF file")
    body_seed: int = field(0, "seed of the sampled body")
    card: str = field("", "body card (YAML) of a --body file (default: <robot>.yaml beside it)")
    body_class: str = field("", "class of a --body file: arm (card: class)")
    base: str = field("", "base of a --body file: fixed|floating (card: base)")
    ee: str = field("", "end-effector link or site of a --body file (card: ee)")
    package_path: tuple[str, ...] = field((), "folders holding the ROS packages of its meshes")
    device: str = field("keyboard", "teleop device (--list-devices)")
    out: str = field("demos.zarr", "dataset to write; an existing one is appended to")
    task: str = field("reach", "task whose scene, episodes and success measure are used")
    episodes: int = field(0, "stop after this many saved episodes (0: when you quit)")
    seconds: float = field(30.0, "episode length in s (0: the task's own)")
    realtime: bool = field(True, "pace the loop at the control rate (off for scripted devices)")
    randomize: bool = field(False, "the task's domain randomisation (off: replays are exact)")
    cameras: list[str] = field([], "model cameras to record, e.g. wrist_cam scene_cam")
    width: int = field(160, "camera image width")
    height: int = field(120, "camera image height")
    port: int = field(8765, "port of the browser device (localhost)")
    ik_iterations: int = field(30, "IK iterations per control step (2 for BC demonstrations)")
    ik_max_step: float = field(0.3, "largest joint change per IK iteration, rad")
    ik_from_measured: bool = field(False, "start IK from the measured joints (BC demonstrations)")
    action_noise: float = field(0.0, "std of noise on the executed (not recorded) action")
    seed: int = field(0, "seed of the task's episodes")
    ros: bool = field(False, "drive a ROS 2 robot (joint states in, targets out through the "
                      "safety node) instead of the sim")  # fmt: skip
    joint_state_topic: str = field("/joint_states", "--ros: the robot's joint states")
    command_topic: str = field("/policy/commands", "--ros: joint targets out (the safety "
                               "node's input_topic)")  # fmt: skip
    teleop_topic: str = field("/teleop/command", "--ros: the device's end-effector twist out "
                              "(geometry_msgs/TwistStamped), for the recorder")  # fmt: skip
    gripper_topic: str = field("/teleop/gripper", "--ros: the device's gripper opening out "
                               "(std_msgs/Float64, 0..1; '': none)")  # fmt: skip
    recorder: str = field("", "--ros: a recorder node (/recorder) whose episodes follow the "
                          "session's (~/start, ~/stop, ~/discard)")  # fmt: skip
    domain_id: int = field(-1, "--ros: ROS_DOMAIN_ID (-1: the environment's)")
    connect_timeout: float = field(20.0, "--ros: s to wait for the robot and the safety node")

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.seconds < 0:
            raise ValueError(f"episodes={self.episodes}, seconds={self.seconds}: expected >= 0")
        if self.width < 8 or self.height < 8:
            raise ValueError(f"camera size {self.width}x{self.height}: expected >= 8x8")
        if self.ros and self.cameras:
            raise ValueError(
                f"cameras={self.cameras} with --ros: record the robot's camera topics with "
                "the recorder node (python -m xembody.real.ros.recorder)"
            )
        if self.connect_timeout <= 0:
            raise ValueError(f"connect_timeout={self.connect_timeout}, expected > 0 (s)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teleop", help="teleoperate a body (sim or ROS) and record a dataset")
    add_arguments(p, TeleopConfig)
    p.add_argument("--list-devices", action="store_true", help="list the devices and exit")
    p.set_defaults(run=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    from xembody.real import teleop

    if args.list_devices:
        for name in teleop.names():
            print(f"{name:<11} {teleop.get(name).summary}")
        return 0
    try:
        result = run(from_args(TeleopConfig, args))
    except RuntimeError as err:  # --ros: no robot, no safety node, an e-stop
        print(f"xembody teleop: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def run(cfg: TeleopConfig) -> dict:
    from xembody.real import teleop
    from xembody.real.teleop.session import SessionConfig, TeleopSession
    from xembody.sim import tasks
    from xembody.sim.bodies.for_training import check_for_task, load_for_training

    emb = load_for_training(
        cfg.body, cfg.body_seed, card=cfg.card, body_class=cfg.body_class, base=cfg.base,
        ee=cfg.ee, package_path=cfg.package_path,
    )  # fmt: skip
    check_for_task(cfg.task, emb)
    options = {"browser": {"port": cfg.port}, "teacher": {"dt": 1.0 / _control_hz(tasks, cfg)}}
    device = teleop.make(cfg.device, **options.get(cfg.device, {}))
    session_cfg = SessionConfig(
        task=cfg.task, episodes=cfg.episodes, episode_seconds=cfg.seconds,
        realtime=cfg.realtime, randomize=cfg.randomize, cameras=tuple(cfg.cameras),
        width=cfg.width, height=cfg.height, seed=cfg.seed,
        ik_iterations=cfg.ik_iterations, ik_max_step=cfg.ik_max_step,
        ik_from_measured=cfg.ik_from_measured, action_noise=cfg.action_noise,
    )  # fmt: skip
    device.connect()  # a missing device fails here with one line naming what was looked for
    try:
        side = _ros_side(cfg, emb, session_cfg) if cfg.ros else None
        help_text = device.help()
        if help_text:
            print(help_text, flush=True)
        session = TeleopSession(emb, device, cfg.out, session_cfg, side=side)
        where = f"ROS robot ({cfg.command_topic} -> safety)" if cfg.ros else "sim"
        print(f"recording {emb.name} ({cfg.task}, {where}) with {cfg.device} -> {cfg.out}",
              flush=True)  # fmt: skip
        return session.run()
    finally:
        device.disconnect()


def _ros_side(cfg: TeleopConfig, emb, session_cfg):
    """The ROS robot side (`xembody.real.ros.teleop_robot`; imports rclpy, hence here)."""
    try:
        from xembody.real.ros.teleop_robot import RosSide
    except ImportError as err:
        raise RuntimeError(f"--ros needs ROS 2 (pip install -e .[ros]): {err}") from None
    return RosSide(
        emb, session_cfg, joint_state_topic=cfg.joint_state_topic,
        command_topic=cfg.command_topic, teleop_topic=cfg.teleop_topic,
        gripper_topic=cfg.gripper_topic, recorder=cfg.recorder,
        domain_id=None if cfg.domain_id < 0 else cfg.domain_id,
        connect_timeout_s=cfg.connect_timeout,
    )  # fmt: skip


def _control_hz(tasks, cfg: TeleopConfig) -> float:
    return float(tasks.make_config(cfg.task).control_hz)
