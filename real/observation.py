"""Robot readings -> a policy's observation vector, and policy actions -> robot targets
(ROS-free; the ROS policy node wraps it).

`ObservationBuilder(contract, emb)` reads the exported policy's observation layout
("xembody-policy/1" sidecar) and fills each term from a `RobotState` (joints indexed by
name into the policy's order), the operator's `Command` and the last action, the way the
task computes it in simulation (`xembody.sim.tasks`): tests check equality against
`BodyEnv` for reach, navigate and velocity.

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
from xembody.sim.bodies.embodiment import Embodiment, joint_kp


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


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate `v` (3,) by the unit quaternion `q` (4,) w,x,y,z."""
    w, u = q[0], q[1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def axis_angle_error(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """Rotation vector (3,) in rad taking orientation `q_from` to `q_to` (world frame)."""
    dq = np.empty(4)
    mujoco.mju_mulQuat(dq, q_to, quat_conj(q_from))
    if dq[0] < 0:
        dq = -dq
    s = max(float(np.linalg.norm(dq[1:])), 1e-9)
    return dq[1:] / s * 2.0 * np.arctan2(s, dq[0])


def yaw_of(q: np.ndarray) -> float:
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


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


class ObservationBuilder:
    def __init__(self, contract: dict[str, Any], emb: Embodiment):
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
            self._jids = [m.joint(n).id for n in self.joint_names]
            self._dofs = m.jnt_dofadr[self._jids]
            self._kp = joint_kp(m, self._jids)

    def __call__(self, state: RobotState, cmd: Command, last_action: np.ndarray) -> np.ndarray:
        """The observation (obs_dim,) float32; ValueError if an input it needs is missing."""
        self._state, self._cmd, self._last = state, cmd, np.asarray(last_action, dtype=float)
        self._ee: tuple[np.ndarray, np.ndarray] | None = None
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
    def _fk(self) -> tuple[np.ndarray, np.ndarray]:
        if self._ee is None:
            d = self._data
            d.qpos[self._qadr] = self._state.q
            m = self._model
            follow_joint_equalities(m, d)
            mujoco.mj_kinematics(m, d)
            quat = np.empty(4)
            mujoco.mju_mat2Quat(quat, d.site_xmat[self._site])
            self._ee = d.site_xpos[self._site].copy(), quat
        return self._ee

    def _ee_pos(self) -> np.ndarray:
        return self._fk()[0]

    def _target_pos(self) -> np.ndarray:
        return _need(self._cmd.target_pos, "an end-effector target", "target_pos")

    def _pos_error(self) -> np.ndarray:
        return self._target_pos() - self._fk()[0]

    def _rot_error(self) -> np.ndarray:
        target = _need(self._cmd.target_quat, "an end-effector target", "rot_error")
        return axis_angle_error(self._fk()[1], target)

    def _jacobian(self) -> tuple[np.ndarray, np.ndarray]:
        """Linear and angular Jacobian columns of the policy joints, (J, 3) each."""
        ee = self._fk()[0]  # runs the kinematics: joint axes and anchors too
        axis = self._data.xaxis[self._jids]
        return np.cross(axis, ee - self._data.xanchor[self._jids]), axis

    def _jac_pos_error(self) -> np.ndarray:
        return 10.0 * self._jacobian()[0] @ self._pos_error()

    def _jac_rot_error(self) -> np.ndarray:
        return self._jacobian()[1] @ self._rot_error()

    def _ik_step(self) -> np.ndarray:
        error = np.concatenate([self._pos_error(), self.cfg["ik_rot_weight"] * self._rot_error()])
        column, axis = self._jacobian()
        jac = np.concatenate([column, self.cfg["ik_rot_weight"] * axis], 1).T  # (6, J)
        gram = jac @ jac.T + self.cfg["ik_damping"] ** 2 * np.eye(6)
        return np.clip(jac.T @ np.linalg.solve(gram, error), -1.0, 1.0)

    def _gravity_sag(self) -> np.ndarray:
        self._fk()  # kinematics at the measured angles
        m, d = self._model, self._data
        d.qvel[:] = 0.0
        mujoco.mj_comPos(m, d)
        bias = np.zeros(m.nv)
        mujoco.mj_rne(m, d, 0, bias)  # at rest: gravity's generalized force only
        return bias[self._dofs] / self._kp

    # --- velocity (legged) --------------------------------------------------------------
    def _velocity_base_ang_vel(self) -> np.ndarray:
        return _need(self._state.imu_gyro, "an IMU gyro reading", "base_ang_vel")

    def _velocity_base_lin_vel(self) -> np.ndarray:
        return _need(self._state.base_lin_vel, "odometry (base velocity)", "base_lin_vel")

    def _projected_gravity(self) -> np.ndarray:
        q = _need(self._state.imu_quat, "an IMU orientation", "projected_gravity")
        return quat_rotate(quat_conj(q), np.array([0.0, 0.0, -1.0]))

    def _velocity_command(self) -> np.ndarray:
        return np.asarray(self._cmd.twist, dtype=float)

    def _gait_clock(self) -> np.ndarray:
        a = 2 * np.pi * self.phase
        return np.array([np.sin(a), np.cos(a)])

    # --- navigate (wheeled) -------------------------------------------------------------
    def _pose(self) -> tuple[np.ndarray, float]:
        pos = _need(self._state.base_pos, "odometry (base pose)", "goal")
        quat = _need(self._state.base_quat, "odometry (base pose)", "goal")
        return pos[:2], yaw_of(quat)

    def _goal_body(self) -> np.ndarray:
        goal = _need(self._cmd.goal, "a goal pose", "goal_distance")
        pos, yaw = self._pose()
        d = goal - pos
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])

    def _goal_distance(self) -> np.ndarray:
        return np.array([np.linalg.norm(self._goal_body())])

    def _goal_direction(self) -> np.ndarray:
        g = self._goal_body()
        return g / max(float(np.linalg.norm(g)), 1e-6)

    def _navigate_base_lin_vel(self) -> np.ndarray:
        v_body = _need(self._state.base_lin_vel, "odometry (base velocity)", "base_lin_vel")
        quat = _need(self._state.base_quat, "odometry (base pose)", "base_lin_vel")
        v = quat_rotate(quat, v_body)  # world frame
        yaw = yaw_of(quat)
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1]])

    def _navigate_base_ang_vel(self) -> np.ndarray:
        w = _need(self._state.base_ang_vel, "odometry (base velocity)", "base_ang_vel")
        return w[2:3]

    def _ranges(self) -> np.ndarray:
        r = _need(self._cmd.ranges, "a range scan", "ranges")
        top = float(self.cfg["ray_range"])
        if np.isnan(r).any():
            raise ValueError(f"range scan has NaN at ray(s) {np.flatnonzero(np.isnan(r)).tolist()}")
        return np.where((r < 0) | ~np.isfinite(r), top, np.minimum(r, top))


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
