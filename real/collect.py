"""Autonomous data collection: safe exploratory joint targets, recorded as a dataset.

Targets are minimum-jerk moves (smooth: continuous velocity and acceleration, peak speed
capped at `max_speed` of each velocity limit) between random waypoints, with random move
durations (`move_s`) and holds (`hold_s`) so that slow and fast motions, starts and stops
are all seen, plus a small uniform per-period `dither`: without it every target is nearly
a linear function of the last few, and a model cannot tell which one the joint responds to
(the actuator latency is not identifiable). Waypoints are drawn around the default pose
(`spread` of each joint's half range) and always inside the joint limits shrunk by `margin`
of the range on each side; whatever the config asks, every target is clipped into the limits
before it is sent (and the robot clips again). A waypoint is kept only if the body is free of
self-collision and floor contact at the waypoint and along the move (checked on the robot's
own model with MuJoCo's collision detection; contacts present at the home pose are allowed).
Legged bodies are collected suspended (`RobotConfig.suspended`). Velocity-actuated joints
(wheels, bases) get velocity waypoints inside `spread` of their bounds.

Recording (xembody-dataset/1): one frame per control period with `q`, `dq`, `tau` (the
reading before the command) and `target` (the command sent then), float32 (nj,) each; the
next frame holds the resulting reading. Episodes of `episode_s` start from the home pose.
Collection is resumable: it appends episodes to an existing dataset of the same robot until
the dataset holds `minutes` of data; episode k always uses seed (seed, k), so an interrupted
run that is resumed records the same trajectories as an uninterrupted one. "The same robot"
is the identity the dataset's meta records (`RobotConfig.identity`: class, settings, hash);
resuming with another robot fails with an error naming both.

Any `Robot` can be collected from (a `SimRobot`, a robot class of your own, `RosRobot` on
hardware): the collision checks run on the robot's own MuJoCo model where it has one, else on
the body's (hung on a stand when the robot is `suspended`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from xembody.models.cfg import help_field
from xembody.models.dataset import Dataset, Feature
from xembody.models.dataset_meta import read_meta, write_meta
from xembody.real.proxy import RobotConfig, describe_identity
from xembody.real.robot import Robot, suspended_spec, target_limits

FEATURES = ("q", "dq", "tau", "target")


@dataclass(kw_only=True)
class CollectConfig:
    minutes: float = help_field(5.0, "total minutes of data the dataset should hold")
    episode_s: float = help_field(20.0, "seconds per episode (each starts at the home pose)")
    spread: float = help_field(0.6, "waypoints within default +- spread * half of each joint range")
    margin: float = help_field(0.05, "fraction of each joint range kept free at both limits")
    move_s: tuple[float, float] = help_field((0.15, 1.2), "range of move durations (s)")
    hold_s: tuple[float, float] = help_field((0.0, 0.4), "range of hold durations (s)")
    max_speed: float = help_field(0.7, "peak target speed as a fraction of each velocity limit")
    dither: float = help_field(0.01, "uniform per-period target noise (rad): separates delays")
    seed: int = help_field(0, "session seed (trajectories); held-out sessions use another")

    def __post_init__(self) -> None:
        for name in ("minutes", "episode_s", "spread", "max_speed"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")
        if not 0 <= self.dither <= 0.1:
            raise ValueError(f"dither={self.dither}, expected 0 <= dither <= 0.1")
        if not 0 <= self.margin < 0.5:
            raise ValueError(f"margin={self.margin}, expected 0 <= margin < 0.5")
        for name in ("move_s", "hold_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi or (name == "move_s" and lo <= 0):
                raise ValueError(f"{name}={(lo, hi)}, expected 0 < low <= high")


class ExploreTargets:
    """An endless stream of safe, smooth targets (nj,) for `robot`, one per control period."""

    def __init__(self, robot: Robot, cfg: CollectConfig, rng: np.random.Generator,
                 model: mujoco.MjModel | None = None):  # fmt: skip
        self.robot, self.cfg, self.rng = robot, cfg, rng
        emb = robot.embodiment
        lo, hi = target_limits(emb)
        self.position = emb.action.kind == "joint_position"
        self._model = collision_model(robot) if model is None else model
        m = self._model
        self._qadr = m.jnt_qposadr[[m.joint(n).id for n in emb.joint_names]]
        self._key = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_KEY, "home")
        if self.position:
            width = hi - lo
            self.lo, self.hi = lo + cfg.margin * width, hi - cfg.margin * width
            centre = np.clip(emb.default_pose, self.lo, self.hi)
        else:
            self.lo, self.hi, centre = lo, hi, np.zeros(len(lo))
        half = (self.hi - self.lo) / 2
        self.centre = centre
        self.scale = np.minimum(1.0, (self.hi - self.lo) / 2)  # dither of slide joints: smaller
        vmax = np.array([j.velocity_limit for j in emb.joints])
        self.speed_limit = cfg.max_speed * np.where(np.isfinite(vmax), vmax, 10.0)
        self.box = (
            np.maximum(self.lo, centre - cfg.spread * half),
            np.minimum(self.hi, centre + cfg.spread * half),
        )
        self._data = mujoco.MjData(self._model)
        self._allowed = self._contacts(centre) if self.position else set()
        self.current = centre.copy()
        self._plan: list[np.ndarray] = []

    def __iter__(self) -> ExploreTargets:
        return self

    def __next__(self) -> np.ndarray:
        if not self._plan:
            self._plan = self._next_move()
        target = self._plan.pop(0)
        self.current = target
        noise = self.rng.uniform(-1, 1, target.shape) * self.cfg.dither * self.scale
        return np.clip(target + noise, self.lo, self.hi)

    def _next_move(self) -> list[np.ndarray]:
        dt, cfg = self.robot.control_dt, self.cfg
        goal = self._waypoint()
        # a minimum-jerk move over T s peaks at 1.875 * distance / T
        slowest = np.max(1.875 * np.abs(goal - self.current) / self.speed_limit)
        n = max(1, round(max(self.rng.uniform(*cfg.move_s), slowest) / dt))
        tau = np.arange(1, n + 1) / n
        s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5  # minimum-jerk profile
        move = [self.current + si * (goal - self.current) for si in s]
        hold = round(self.rng.uniform(*cfg.hold_s) / dt)
        return move + [goal] * hold

    def _waypoint(self) -> np.ndarray:
        for _ in range(50):
            goal = self.rng.uniform(*self.box)
            if not self.position:
                return goal
            path = [self.current + a * (goal - self.current) for a in (0.25, 0.5, 0.75, 1.0)]
            if all(self.collision_free(q) for q in path):
                return goal
        return self.centre.copy()  # the default pose is always safe

    def collision_free(self, q: np.ndarray) -> bool:
        """No contact at joint positions `q` other than those of the default pose."""
        return not (self._contacts(q) - self._allowed)

    def _contacts(self, q: np.ndarray) -> set[tuple[int, int]]:
        m, d = self._model, self._data
        if self._key >= 0:
            mujoco.mj_resetDataKeyframe(m, d, self._key)
        d.qpos[self._qadr] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        pairs = {tuple(sorted(d.contact[i].geom)) for i in range(d.ncon) if d.contact[i].dist < 0}
        return {(int(a), int(b)) for a, b in pairs}


def collision_model(robot: Robot) -> mujoco.MjModel:
    """The model collisions are checked on: a simulated robot's own, else the body's (on a
    stand when the robot is `suspended`)."""
    model = getattr(robot, "model", None)
    if model is None:
        emb = robot.embodiment
        spec = suspended_spec(emb) if getattr(robot, "suspended", False) else emb.spec()
        model = spec.compile()
    return model


def features(num_joints: int) -> dict[str, Feature]:
    return {k: Feature(shape=(num_joints,), dtype="float32") for k in FEATURES}


def collect(robot_cfg: RobotConfig, cfg: CollectConfig, out: str | Path) -> dict:
    """Record `cfg.minutes` of exploration on the robot of `robot_cfg` into `out` (created,
    or resumed when it holds data of the same robot). Returns a summary dict ("note": why
    an old dataset's robot was inferred, else "")."""
    out = Path(out)
    ident = robot_cfg.identity()
    note = ""
    try:
        held = Dataset.open(out, mode="r")
    except FileNotFoundError:  # nothing there, or a store whose creation was killed
        held = None
    if held is not None:
        old = read_meta(held.meta).get("robot_id")
        if old is None or old["hash"] != ident["hash"]:
            theirs = describe_identity(old) if old else "no robot identity"
            raise ValueError(
                f"{out}: holds data of robot {theirs}, not of {describe_identity(ident)}; "
                "collect into another folder (or collect with the dataset's robot)"
            )
        if old.get("legacy"):
            note = f"note: {out} predates robot identities; its robot was inferred as the same"
    robot = robot_cfg.make()
    meta = write_meta(
        robot.embodiment,
        robot_id=ident,
        robot=robot_cfg.to_dict(),
        collect=dataclasses.asdict(cfg),
        joint_names=list(robot.joint_names),
        control_dt=robot.control_dt,
    )
    # (an existing one has the same identity, so the same body and joints)
    ds = Dataset.open_or_create(
        out, features(robot.num_joints), fps=1 / robot.control_dt, meta=meta
    )
    resumed_from = ds.num_frames
    goal = round(cfg.minutes * 60 / robot.control_dt)
    per_episode = max(2, round(cfg.episode_s / robot.control_dt))
    lo, hi = target_limits(robot.embodiment)
    try:
        model = collision_model(robot)
        while ds.num_frames < goal:
            k = ds.num_episodes
            steps = max(2, min(per_episode, goal - ds.num_frames))
            targets = ExploreTargets(robot, cfg, np.random.default_rng([cfg.seed, k]), model)
            state = robot.reset()
            for _ in range(steps):
                target = next(targets)
                if (target < lo).any() or (target > hi).any():  # unreachable: a safety net
                    raise RuntimeError(f"collection produced a target outside the limits: {target}")
                ds.add_frame({"q": state.q, "dq": state.dq, "tau": state.tau, "target": target})
                robot.send(target)
                state = robot.step()
            ds.save_episode(seed=[cfg.seed, k])
    finally:
        robot.close()
    return {
        "out": str(out),
        "frames": ds.num_frames,
        "episodes": ds.num_episodes,
        "minutes": ds.num_frames * robot.control_dt / 60,
        "resumed_from_frames": resumed_from,
        "body": robot.embodiment.name,
        "robot": describe_identity(ident),
        "note": note,
    }
