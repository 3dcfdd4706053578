"""Robot readings -> a policy's observation vector, and policy actions -> robot targets
(ROS-free; the ROS policy node wraps it).

`ObservationBuilder(contract, emb)` reads the exported policy's observation layout
(the "xembody-policy" sidecar) and fills each term from a `RobotState` (joints indexed by
name into the policy's order), the operator's `Command` and the last action. The terms
are the sim tasks' own functions (`xembody.sim.tasks.terms`, over a state view with one
row): this module only turns readings into that view (forward kinematics of the body's
MJCF for arms, odometry and IMU for bases); tests check equality against `BodyEnv` for
reach, navigate and velocity.

    builder = ObservationBuilder(policy.contract, emb)
    obs = builder(state, Command(twist=(0.5, 0, 0)), last_action)   # (obs_dim,) float32
    builder.advance(dt)                                               # gait clock, per step

`ActionMap(contract, emb)(action)` -> targets (nj,) in the Embodiment's joint order for
joint-offset mappings (joints the policy does not drive stay at their default), or the body
twist (vx, vy, wz) for "body_twist" (`ActionMap.twist`). `twist_to_wheels` converts a twist
to a wheeled body's actuator targets as the navigation task does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from xembody.real.robot import RobotState
from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.tasks.math import quat_rotate, yaw_of

# The shared term functions import torch: loaded with the first ObservationBuilder, so that
# nodes which only need the helpers below (sim robot, safety) start without it.
terms: Any = None


def _load_terms() -> None:
    global terms
    if terms is None:
        from xembody.sim.tasks import terms as tasks_terms

        terms = tasks_terms


@dataclass
class Command:
    """What the operator asks for. twist: (vx, vy, wz) m/s, m/s, rad/s in the base frame;
    goal: (x, y) m in the odometry (world) frame; target_pos (3,) m and target_quat (4,)
    w,x,y,z: an end-effector pose in the arm's base (world) frame; ranges: rangefinder
    distances (num_rays,) in m, ray i at 360 i / num_rays deg CCW from forward."""

    twist: tuple[float, float, float] = (0.0, 0.0, 0.0)
    goal: tuple[float, float] | None = None
    target_pos: np.ndarray | None = None
    target_quat: np.ndarray | None = None
    ranges: np.ndarray | None = None


def follow_joint_equalities(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Set each joint that a joint equality ties to another (a mirrored finger) from the
    one it follows, by the equality's polynomial: a robot reports only the leader."""
    for e in range(model.neq):
        if model.eq_type[e] != mujoco.mjtEq.mjEQ_JOINT or model.eq_obj2id[e] < 0:
            continue
        follower, leader = (model.jnt_qposadr[model.eq_obj1id[e]],
                            model.jnt_qposadr[model.eq_obj2id[e]])  # fmt: skip
        x = data.qpos[leader] - model.qpos0[leader]
        c = model.eq_data[e, :5]
        data.qpos[follower] = model.qpos0[follower] + c @ x ** np.arange(5)


def _need(value: Any, what: str, term: str) -> np.ndarray:
    if value is None:
        raise ValueError(f"observation term {term!r} needs {what}, which has not arrived")
    return np.asarray(value, dtype=float)


def _row(x: Any) -> np.ndarray:
    """A reading as one row (1, k) float64: the state view of one robot."""
    return np.array(x, dtype=np.float64, ndmin=1)[None]


def _out(x: np.ndarray) -> np.ndarray:
    return x[0]


class ObservationBuilder:
    def __init__(self, contract: dict[str, Any], emb: Embodiment):
        _load_terms()
        self.contract = contract
        self.emb = emb
        self.task = contract["task"]
        self.cfg = contract["task_cfg"]
        self.joint_names = tuple(contract["joint_names"])
        self.default = np.asarray(contract["default_pose"], dtype=float)
        self.policy_index = np.array([emb.joint_names.index(n) for n in self.joint_names])
        self.terms = list(contract["observation"]["terms"])
        self.obs_dim = int(contract["obs_dim"])
        self.phase = 0.0  # gait clock, in periods
        self._fns: list[Callable[..., np.ndarray]] = []
        for term in self.terms:
            fn = getattr(self, f"_{self.task}_{term['name']}", None) or getattr(
                self, f"_{term['name']}", None
            )
            if fn is None:
                raise ValueError(
                    f"observation term {term['name']!r} of task {self.task!r} has no robot-side "
                    "builder (add one to xembody.real.observation)"
                )
            self._fns.append(fn)
        if self.task == "reach":
            self._model = emb.compile()
            self._data = mujoco.MjData(self._model)
            self._site = self._model.site(emb.sensors.ee_site).id
            m = self._model
            self._qadr = m.jnt_qposadr[[m.joint(n).id for n in emb.joint_names]]
            self._arm = terms.ArmKinematics.from_model(m, self.joint_names, numpy=True)

    def __call__(self, state: RobotState, cmd: Command, last_action: np.ndarray) -> np.ndarray:
        """The observation (obs_dim,) float32; ValueError if an input it needs is missing."""
        self._state, self._cmd, self._last = state, cmd, np.asarray(last_action, dtype=float)
        self._ee: dict[str, np.ndarray] | None = None
        self._view: dict[str, Any] = {}  # parts of the state view shared by several terms
        parts = []
        for term, fn in zip(self.terms, self._fns, strict=True):
            x = np.atleast_1d(fn())
            if x.shape != (term["size"],):
                raise ValueError(
                    f"observation term {term['name']!r}: built {x.shape[0]} values, the "
                    f"policy expects {term['size']}"
                )
            parts.append(x)
        return np.concatenate(parts).astype(np.float32)

    def advance(self, dt: float) -> None:
        """Advance the gait clock by one control period `dt` (s)."""
        period = float(self.cfg.get("gait_period", 0.0))
        if period > 0:
            self.phase = (self.phase + dt / period) % 1.0

    # --- shared terms -------------------------------------------------------------------
    def _joint_pos(self) -> np.ndarray:
        return self._state.q[self.policy_index] - self.default

    def _joint_vel(self) -> np.ndarray:
        return self._state.dq[self.policy_index]

    def _last_action(self) -> np.ndarray:
        return self._last

    # --- reach --------------------------------------------------------------------------
    def _fk(self) -> dict[str, np.ndarray]:
        """The arm's state view at the measured angles: end-effector pose, body poses and
        the joints' world axes and anchors (one row each)."""
        if self._ee is None:
            m, d = self._model, self._data
            d.qpos[self._qadr] = self._state.q
            follow_joint_equalities(m, d)
            mujoco.mj_kinematics(m, d)
            quat = np.empty(4)
            mujoco.mju_mat2Quat(quat, d.site_xmat[self._site])
            self._ee = {"ee_pos": _row(d.site_xpos[self._site]), "ee_quat": _row(quat),
                        "body_pos": _row(d.xpos), "body_quat": _row(d.xquat)}  # fmt: skip
        return self._ee

    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The policy joints' world axes and anchors (1, J, 3) each, once per observation."""
        v = self._fk()
        if "axis" not in v:
            v["axis"], v["anchor"] = terms.joint_axes(self._arm, v["body_pos"], v["body_quat"])
        return v["axis"], v["anchor"]

    def _ee_pos(self) -> np.ndarray:
        return _out(self._fk()["ee_pos"])

    def _target_pos(self) -> np.ndarray:
        return _need(self._cmd.target_pos, "an end-effector target", "target_pos")

    def _pos_err(self) -> np.ndarray:
        return terms.pos_error(_row(self._target_pos()), self._fk()["ee_pos"])

    def _rot_err(self) -> np.ndarray:
        target = _need(self._cmd.target_quat, "an end-effector target", "rot_error")
        return terms.rot_error(self._fk()["ee_quat"], _row(target))

    def _pos_error(self) -> np.ndarray:
        return _out(self._pos_err())

    def _rot_error(self) -> np.ndarray:
        return _out(self._rot_err())

    def _jacobian(self) -> tuple[np.ndarray, np.ndarray]:
        return terms.jacobian(*self._axes(), self._fk()["ee_pos"])

    def _jac_pos_error(self) -> np.ndarray:
        return _out(terms.jac_pos_error(self._jacobian()[0], self._pos_err()))

    def _jac_rot_error(self) -> np.ndarray:
        return _out(terms.jac_rot_error(self._axes()[0], self._rot_err()))

    def _ik_step(self) -> np.ndarray:
        column, axis = self._jacobian()
        damping, weight = self.cfg["ik_damping"], self.cfg["ik_rot_weight"]
        step = terms.ik_step(column, axis, self._pos_err(), self._rot_err(), damping, weight)
        return _out(step)

    def _gravity_sag(self) -> np.ndarray:
        v = self._fk()
        sag = terms.gravity_sag(self._arm, v["body_pos"], v["body_quat"], *self._axes())
        return _out(sag)

    # --- velocity (legged) --------------------------------------------------------------
    def _velocity_base_ang_vel(self) -> np.ndarray:
        return _need(self._state.imu_gyro, "an IMU gyro reading", "base_ang_vel")

    def _velocity_base_lin_vel(self) -> np.ndarray:
        return _need(self._state.base_lin_vel, "odometry (base velocity)", "base_lin_vel")

    def _projected_gravity(self) -> np.ndarray:
        q = _need(self._state.imu_quat, "an IMU orientation", "projected_gravity")
        return _out(terms.projected_gravity(_row(q)))

    def _velocity_command(self) -> np.ndarray:
        return np.asarray(self._cmd.twist, dtype=float)

    def _gait_clock(self) -> np.ndarray:
        return _out(terms.gait_clock(np.array([self.phase])))

    # --- navigate (wheeled) -------------------------------------------------------------
    def _pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(base xy, yaw (1,), orientation (1, 4)) from odometry, once per observation."""
        if "pose" not in self._view:
            pos = _need(self._state.base_pos, "odometry (base pose)", "goal")
            quat = _row(_need(self._state.base_quat, "odometry (base pose)", "goal"))
            self._view["pose"] = pos[:2], yaw_of(quat), quat
        return self._view["pose"]

    def _goal_body(self) -> np.ndarray:
        if "goal_body" not in self._view:
            goal = _need(self._cmd.goal, "a goal pose", "goal_distance")
            pos, yaw, _ = self._pose()
            self._view["goal_body"] = terms.to_yaw_frame(_row(goal - pos), yaw)
        return self._view["goal_body"]

    def _goal_distance(self) -> np.ndarray:
        return _out(terms.goal_distance(self._goal_body()))

    def _goal_direction(self) -> np.ndarray:
        return _out(terms.goal_direction(self._goal_body()))

    def _navigate_base_lin_vel(self) -> np.ndarray:
        v_body = _need(self._state.base_lin_vel, "odometry (base velocity)", "base_lin_vel")
        _, yaw, quat = self._pose()
        v_world = quat_rotate(quat, _row(v_body))  # odometry twist: base frame
        return _out(terms.to_yaw_frame(v_world[:, :2], yaw))

    def _navigate_base_ang_vel(self) -> np.ndarray:
        w = _need(self._state.base_ang_vel, "odometry (base velocity)", "base_ang_vel")
        return w[2:3]

    def _ranges(self) -> np.ndarray:
        r = _need(self._cmd.ranges, "a range scan", "ranges")
        if np.isnan(r).any():
            raise ValueError(f"range scan has NaN at ray(s) {np.flatnonzero(np.isnan(r)).tolist()}")
        r = np.where(np.isinf(r), -1.0, r)  # no hit: the sim's rangefinders read -1
        return _out(terms.clipped_ranges(_row(r), float(self.cfg["ray_range"])))


class ActionMap:
    """Policy action (num_actions,) -> what the robot is sent (see the module docstring)."""

    def __init__(self, contract: dict[str, Any], emb: Embodiment):
        a = contract["action"]
        self.mapping = a["mapping"]
        self.scale, self.clip = float(a["action_scale"]), float(a["action_clip"])
        self.turn_scale = float(contract["task_cfg"].get("turn_scale", 1.0))
        self.emb = emb
        names = tuple(contract["joint_names"])
        self.index = np.array([emb.joint_names.index(n) for n in names])
        self.default_full = emb.default_pose.astype(float)
        self.default = np.asarray(contract["default_pose"], dtype=float)
        if self.mapping not in ("joint_position_offset", "joint_velocity_offset", "body_twist"):
            raise ValueError(
                f"action mapping {self.mapping!r} is not supported on the robot side "
                "(expected joint_position_offset, joint_velocity_offset or body_twist)"
            )

    @property
    def twist_output(self) -> bool:
        return self.mapping == "body_twist"

    def targets(self, action: np.ndarray) -> np.ndarray:
        """Joint targets (nj,) in the Embodiment's order."""
        a = np.clip(np.asarray(action, dtype=float), -self.clip, self.clip)
        out = self.default_full.copy()
        out[self.index] = self.default + self.scale * a
        return out

    def twist(self, action: np.ndarray) -> np.ndarray:
        """(vx m/s, vy m/s, wz rad/s) in the base frame."""
        a = np.clip(np.asarray(action, dtype=float), -self.clip, self.clip)
        vy = self.scale * a[1] if len(a) == 3 else 0.0
        return np.array([self.scale * a[0], vy, self.turn_scale * a[-1]])


def ring_scan(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    base_id: int,
    ring_height: float,
    num_rays: int,
    max_range: float,
) -> np.ndarray:
    """Horizontal ranges (num_rays,) in m from the base body at `ring_height` (base frame),
    ray i at 360 i / num_rays deg CCW from forward, ignoring the base's own geoms: what the
    navigation task's rangefinder ring reads. No hit (or beyond `max_range`): inf."""
    rot = data.xmat[base_id].reshape(3, 3)
    origin = data.xpos[base_id] + rot @ np.array([0.0, 0.0, ring_height])
    geom = np.zeros(1, dtype=np.int32)
    out = np.full(num_rays, np.inf)
    for i in range(num_rays):
        a = 2 * np.pi * i / num_rays
        direction = rot @ np.array([np.cos(a), np.sin(a), 0.0])
        r = mujoco.mj_ray(model, data, origin, direction, None, 1, base_id, geom)
        if 0 <= r <= max_range:
            out[i] = r
    return out


def twist_limits(emb: Embodiment) -> np.ndarray:
    """Largest |vx|, |vy| (m/s) and |wz| (rad/s) a wheeled body's actuators allow, each
    alone: differential drive from the wheel speed limit, omni from the base actuators."""
    top = np.minimum(np.abs(emb.action.low), np.abs(emb.action.high))
    if emb.params.get("omni", 0):
        return top.astype(float)
    r, half = emb.params["wheel_radius"], emb.params["track_width"] / 2
    w = float(top.min())
    return np.array([w * r, 0.0, w * r / half])


def twist_to_wheels(emb: Embodiment, twist: np.ndarray, yaw: float = 0.0) -> np.ndarray:
    """Body twist (vx, vy, wz) -> a wheeled body's velocity targets (nj,), unclipped:
    differential drive: (left, right) wheel speeds in rad/s; omni: world-frame base_x,
    base_y speeds (m/s, rotated by `yaw`) and the yaw rate."""
    vx, vy, wz = (float(x) for x in twist)
    if emb.params.get("omni", 0):
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * vx - s * vy, s * vx + c * vy, wz])
    if abs(vy) > 1e-9:
        raise ValueError(f"twist vy={vy}: a differential-drive base cannot move sideways")
    r, half = emb.params["wheel_radius"], emb.params["track_width"] / 2
    return np.array([(vx - wz * half) / r, (vx + wz * half) / r])
