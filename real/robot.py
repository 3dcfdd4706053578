"""The robot interface: ONE robot (not batched), as a hardware driver would expose it.

Every implementation (nominal MuJoCo `SimRobot`, the real-proxy `ProxyRobot` in
`xembody.real.proxy`, a hardware driver) speaks this contract:

- `reset(q0=None) -> RobotState`: go to the home pose (or joint positions `q0`, (nj,)).
- `read() -> RobotState`: the latest reading, without advancing time.
- `send(targets, kp=None, kd=None)`: actuator targets in the Embodiment's joint order,
  (nj,): position targets (rad or m) for position actuators, velocities (rad/s or m/s) for
  velocity actuators. Position targets are clipped into the joint's range and velocity
  targets into the action bounds: a robot never receives a target outside its limits.
  `kp`/`kd` ((nj,) or None: the Embodiment's gains) set the PD gains from now on.
- `step() -> RobotState`: advance one control period `control_dt` (s) holding the last
  command (sim: physics substeps; hardware: wait for the next period) and read.
- `close()`.

Units SI, angles in rad, arrays float64.

Robots are named (`RobotConfig.robot` in `xembody.real.proxy`, `--robot` of the CLI) by a
registered id (`ROBOTS`: "ros") or a `module:Class` path, so a robot of your own needs no
edit here. A robot class is built as `Class(embodiment, control_dt=..., seed=...,
suspended=..., **options)` (`options`: its JSON config); subclasses of `ProxyRobot` also get
`config=` their `ProxyConfig`. The closed-loop gap study steps robots inside the policy's
task scene, so there a class must be a `SimRobot` that passes `model=` on to it.
"""

from __future__ import annotations

import copy
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import mujoco
import numpy as np

from xembody.sim.bodies.embodiment import Embodiment


@dataclass
class RobotState:
    """One reading. Joint arrays are (nj,) in the Embodiment's joint order; q in rad (or m),
    dq in rad/s, tau the measured actuator effort in N m (or N). IMU fields come from the
    body's IMU site (quat w,x,y,z world orientation; gyro rad/s and acc m/s^2 in the site
    frame); base fields are odometry of the base body for floating or wheeled bases
    (position and orientation in the world frame, velocities in the base frame)."""

    stamp: float
    joint_names: tuple[str, ...]
    q: np.ndarray
    dq: np.ndarray
    tau: np.ndarray
    imu_quat: np.ndarray | None = None
    imu_gyro: np.ndarray | None = None
    imu_acc: np.ndarray | None = None
    base_pos: np.ndarray | None = None
    base_quat: np.ndarray | None = None
    base_lin_vel: np.ndarray | None = None
    base_ang_vel: np.ndarray | None = None


class Robot(ABC):
    """One robot behind the read / send / step contract (see the module docstring)."""

    embodiment: Embodiment
    joint_names: tuple[str, ...]
    control_dt: float

    @abstractmethod
    def reset(self, q0: np.ndarray | None = None) -> RobotState: ...

    @abstractmethod
    def read(self) -> RobotState: ...

    @abstractmethod
    def send(
        self, targets: np.ndarray, kp: np.ndarray | None = None, kd: np.ndarray | None = None
    ) -> None: ...

    @abstractmethod
    def step(self) -> RobotState: ...

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the connection or the simulator."""

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def safe_targets(self, targets: np.ndarray) -> np.ndarray:
        """`targets` (nj,) checked (shape, finite) and clipped into the joint limits."""
        t = np.asarray(targets, dtype=float)
        if t.shape != (self.num_joints,):
            raise ValueError(f"targets have shape {t.shape}, expected ({self.num_joints},)")
        if not np.isfinite(t).all():
            raise ValueError(f"targets contain NaN or inf: {t}")
        lo, hi = target_limits(self.embodiment)
        return np.clip(t, lo, hi)


# robot id -> "module:Class"; anything else with a colon is taken as a class path
ROBOTS = {"ros": "xembody.real.ros.robot_client:RosRobot"}


def robot_class(name: str) -> type[Robot]:
    """The Robot class of a registered id (`ROBOTS`) or a "module:Class" path."""
    path = ROBOTS.get(name, name)
    module, sep, qualname = path.partition(":")
    if not sep or not module or not qualname:
        raise ValueError(f"robot {name!r}: expected one of {sorted(ROBOTS)} or 'module:Class'")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"robot {name!r}: cannot import module {module!r} ({err})") from None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"robot {name!r}: module {module!r} has no {qualname!r}")
    if not (isinstance(obj, type) and issubclass(obj, Robot)):
        raise ValueError(f"robot {name!r}: {qualname} is not a xembody.real.robot.Robot class")
    return obj


def class_path(cls: type) -> str:
    """ "module:Class" of a class (what `robot_class` reads back)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def target_limits(emb: Embodiment) -> tuple[np.ndarray, np.ndarray]:
    """(low, high), each (nj,): the allowed actuator targets (joint range for position
    actuators, action bounds for velocity actuators)."""
    if emb.action.kind == "joint_position":
        lo = np.array([j.range[0] for j in emb.joints])
        hi = np.array([j.range[1] for j in emb.joints])
    else:
        lo, hi = np.array(emb.action.low), np.array(emb.action.high)
    return lo, hi


def suspended_spec(emb: Embodiment, lift: float = 0.5) -> mujoco.MjSpec:
    """The body's MjSpec with its free joint removed and the base raised by `lift` m above
    its home pose: a legged robot hung on a test stand, legs free in the air."""
    spec = emb.spec()
    free = [j for j in spec.joints if j.type == mujoco.mjtJoint.mjJNT_FREE]
    if not free:
        return spec
    base = spec.body(emb.sensors.base_body) if emb.sensors.base_body else free[0].parent
    model = emb.compile()
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    home = model.key_qpos[key] if key >= 0 else model.qpos0
    qadr = model.jnt_qposadr[model.joint(free[0].name).id]
    base.pos = home[qadr : qadr + 3] + np.array([0.0, 0.0, lift])
    base.quat = home[qadr + 3 : qadr + 7]
    for k in list(spec.keys):
        qpos = np.array(k.qpos)
        k.qpos = np.delete(qpos, np.s_[qadr : qadr + 7]) if qpos.size == model.nq else qpos
        k.qvel = []
        k.act = []
    spec.delete(free[0])
    return spec


class SimRobot(Robot):
    """Nominal MuJoCo physics for one robot on a plain `mujoco.MjData`.

    `model`: a compiled model that contains the body (a task's scene); default: the body
    alone (`suspended=True`: hung on a stand, see `suspended_spec`). Actuator i drives
    `embodiment.joints[i]`. `seed` seeds `self.rng` (noise of subclasses)."""

    def __init__(
        self,
        embodiment: Embodiment,
        control_dt: float = 0.02,
        seed: int = 0,
        *,
        model: mujoco.MjModel | None = None,
        suspended: bool = False,
    ):
        if control_dt <= 0:
            raise ValueError(f"control_dt={control_dt}, expected > 0")
        self.embodiment = embodiment
        self.joint_names = embodiment.joint_names
        self.control_dt = float(control_dt)
        self.suspended = suspended
        if model is None:
            model = suspended_spec(embodiment).compile() if suspended else embodiment.compile()
        self.model = self._build_model(model)
        self.data = mujoco.MjData(self.model)
        dt = self.model.opt.timestep
        self.substeps = round(control_dt / dt)
        if self.substeps < 1 or abs(self.substeps * dt - control_dt) > 1e-9:
            raise ValueError(
                f"control_dt={control_dt}: expected a multiple of the physics timestep {dt}"
            )
        self.rng = np.random.default_rng(seed)
        m = self.model
        ids = [m.joint(n).id for n in self.joint_names]
        self.qadr = m.jnt_qposadr[ids]
        self.dadr = m.jnt_dofadr[ids]
        self.act_ids = np.array([m.actuator(i).id for i in range(len(ids))])
        self.position = embodiment.action.kind == "joint_position"
        self.kp0 = np.array([j.kp for j in embodiment.joints])
        self.kd0 = np.array([j.kd for j in embodiment.joints])
        self._sensor = {
            name: (m.sensor(name).adr[0], m.sensor(name).dim[0])
            for name in ("imu_quat", "imu_gyro", "imu_acc")
            if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, name) >= 0
        }
        base = embodiment.sensors.base_body
        odometry = (embodiment.floating_base and not suspended) or embodiment.body_class == (
            "wheeled"
        )
        self._base = m.body(base).id if base and odometry else None
        self._key = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_KEY, "home")
        self.command = np.zeros(self.num_joints)  # the targets the actuators act on now
        self.reset()

    # --- hooks for subclasses (the real-proxy) ----------------------------------------------
    def _build_model(self, model: mujoco.MjModel) -> mujoco.MjModel:
        """A private copy of the model this robot steps (subclasses edit it)."""
        return copy.copy(model)

    def _latch(self, targets: np.ndarray) -> np.ndarray:
        """The targets the actuators see this period, given the targets last sent."""
        return targets

    def _substep(self) -> None:
        """Called before every physics substep (ctrl already holds `self.command`)."""

    # --- the contract -------------------------------------------------------------------
    def reset(self, q0: np.ndarray | None = None) -> RobotState:
        m, d = self.model, self.data
        if self._key >= 0:
            mujoco.mj_resetDataKeyframe(m, d, self._key)
        else:
            mujoco.mj_resetData(m, d)
        q = self.embodiment.default_pose if q0 is None else np.asarray(q0, dtype=float)
        if q.shape != (self.num_joints,) or not np.isfinite(q).all():
            raise ValueError(f"q0={q}: expected {self.num_joints} finite joint positions")
        if self.position or q0 is not None:
            d.qpos[self.qadr] = q
        self._sent = self.safe_targets(q) if self.position else np.zeros(self.num_joints)
        self.command = self._sent.copy()
        d.ctrl[self.act_ids] = self.command
        self.set_gains(self.kp0, self.kd0)
        mujoco.mj_forward(m, d)
        self._sync()
        return self.read()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray | None = None) -> RobotState:
        """Put the whole model in state qpos (nq,), qvel (nv,) (zero when None), holding the
        joints where they are (a simulator-only operation: test benches, resets of envs)."""
        m, d = self.model, self.data
        d.qpos[:] = qpos
        d.qvel[:] = 0.0 if qvel is None else qvel
        if self.position:
            self._sent = self.safe_targets(d.qpos[self.qadr])
            self.command = self._sent.copy()
        d.ctrl[self.act_ids] = self.command
        mujoco.mj_forward(m, d)
        self._sync()
        return self.read()

    def _sync(self) -> None:
        """Hook: re-initialise internal states after a reset or `set_state`."""

    def send(self, targets, kp=None, kd=None) -> None:
        self._sent = self.safe_targets(targets)
        if kp is not None or kd is not None:
            self.set_gains(self.kp0 if kp is None else kp, self.kd0 if kd is None else kd)

    def step(self) -> RobotState:
        m, d = self.model, self.data
        self.command = self._latch(self._sent)
        for _ in range(self.substeps):
            d.ctrl[self.act_ids] = self.command
            self._substep()
            mujoco.mj_step(m, d)
        return self.read()

    def read(self) -> RobotState:
        m, d = self.model, self.data
        s = RobotState(
            stamp=float(d.time),
            joint_names=self.joint_names,
            q=d.qpos[self.qadr].copy(),
            dq=d.qvel[self.dadr].copy(),
            tau=d.actuator_force[self.act_ids].copy(),
        )
        for name, (adr, dim) in self._sensor.items():
            setattr(s, name, d.sensordata[adr : adr + dim].copy())
        if self._base is not None:
            vel = np.zeros(6)
            # the base body's own frame (XBODY), not its principal inertia axes (BODY)
            mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, self._base, vel, 1)
            s.base_pos = d.xpos[self._base].copy()
            s.base_quat = d.xquat[self._base].copy()
            s.base_ang_vel, s.base_lin_vel = vel[:3].copy(), vel[3:].copy()
        return s

    # --- helpers ------------------------------------------------------------------------
    def set_gains(self, kp: np.ndarray, kd: np.ndarray) -> None:
        """PD gains (nj,) each, >= 0 (N m/rad, N m s/rad); velocity actuators use kd only."""
        kp, kd = np.asarray(kp, float), np.asarray(kd, float)
        for name, g in (("kp", kp), ("kd", kd)):
            if g.shape != (self.num_joints,) or not np.isfinite(g).all() or (g < 0).any():
                raise ValueError(f"{name}={g}: expected {self.num_joints} finite values >= 0")
        m, a = self.model, self.act_ids
        if self.position:
            m.actuator_gainprm[a, 0] = kp
            m.actuator_biasprm[a, 1] = -kp
        else:
            m.actuator_gainprm[a, 0] = kd
        m.actuator_biasprm[a, 2] = -kd
        self.kp, self.kd = kp, kd
