"""End-effector pose reaching for arms (task id `reach`).

Each episode draws a target pose the arm can reach: a random joint configuration near the
default pose (+-`target_spread` rad per joint, inside the limits) taken through forward
kinematics, kept only if the end effector stays above `min_height`. Success: position error
under `success_pos` (2 cm) and orientation error under `success_rot` (0.1 rad), held for
`success_hold_s` (0.5 s). The gripper is not driven (held at its default).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from . import terms
from .base import ObsTerm, RewardTerm, Task, TaskConfig, add_frame_sensors
from .terms import ArmKinematics


@dataclass(kw_only=True)
class ReachConfig(TaskConfig):
    episode_seconds: float = 4.0
    action_scale: float = 0.5
    target_spread: float = 0.6  # rad around the default pose, per joint
    min_height: float = 0.08  # m, lowest allowed target
    success_pos: float = 0.02  # m
    success_rot: float = 0.1  # rad
    success_hold_s: float = 0.5
    # Per-joint terms `jac_pos_error` and `jac_rot_error`: each arm joint's Jacobian column
    # (world frame) dotted with the position and rotation errors, i.e. how far moving that
    # joint alone reduces the error. They do not depend on the body's layout, so a
    # joint-token student can use them on arms it has not seen (xembody generalist).
    jacobian_obs: bool = False
    # Per-joint term `ik_step`: the damped-least-squares differential-IK step toward the
    # target pose, dq = J^T (J J^T + ik_damping^2 I)^-1 (e_pos, ik_rot_weight * e_rot),
    # per joint (rad, clipped to +-1). The joint-space answer of a classical controller,
    # on any arm, for a joint-token student to refine.
    ik_obs: bool = False
    ik_damping: float = 0.05
    ik_rot_weight: float = 0.5
    # Per-joint term `gravity_sag`: how far gravity deflects each joint from its position
    # target under its PD at the current pose, tau_gravity / kp (rad), from the body's
    # nominal masses and gains. A target offset by it lets the arm settle where it aims;
    # without it a long arm settles centimetres short (docs/RESULTS.md).
    gravity_obs: bool = False


class ReachTask(Task):
    body_classes = ("arm",)
    name = "reach"
    cfg: ReachConfig

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.emb.joint_names if n != "gripper")

    def build_model(self) -> mujoco.MjModel:
        spec = self.emb.spec()
        add_frame_sensors(spec, "ee", mujoco.mjtObj.mjOBJ_SITE, self.emb.sensors.ee_site)
        target = spec.worldbody.add_body(name="target", mocap=True)
        target.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.015, 0, 0], rgba=[0.1, 0.9, 0.2, 0.6],
            contype=0, conaffinity=0,
        )  # fmt: skip
        return spec.compile()

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        n, dev = self.num_envs, self.device
        self.target_pos = torch.zeros(n, 3, device=dev)
        self.target_quat = torch.zeros(n, 4, device=dev)
        self.target_quat[:, 0] = 1.0
        self.held = torch.zeros(n, device=dev)
        self._fk = mujoco.MjData(sim.model)
        self._site = sim.model.site(self.emb.sensors.ee_site).id
        # joint anchors and axes, and gravity: nominal masses and gains (sim/tasks/terms.py)
        self.arm = ArmKinematics.from_model(sim.model, self.joint_names, device=dev)
        self._kp = self.arm.kp

    # --- terms --------------------------------------------------------------------------
    def ee_pos(self) -> torch.Tensor:
        return self.sensor("ee_pos")

    def ee_quat(self) -> torch.Tensor:
        return self.sensor("ee_quat")

    def pos_error(self) -> torch.Tensor:
        return terms.pos_error(self.target_pos, self.ee_pos())

    def rot_error(self) -> torch.Tensor:
        return terms.rot_error(self.ee_quat(), self.target_quat)

    def joint_axes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """World-frame joint axes and anchors of the arm joints, (N, J, 3) each."""
        return terms.joint_axes(self.arm, self.sim.body_pos.float(), self.sim.body_quat.float())

    def jacobian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """World-frame Jacobian columns of the arm joints, (N, J, 3) each."""
        return terms.jacobian(*self.joint_axes(), self.ee_pos())

    def jac_pos_error(self) -> torch.Tensor:
        return terms.jac_pos_error(self.jacobian()[0], self.pos_error())

    def jac_rot_error(self) -> torch.Tensor:
        return terms.jac_rot_error(self.joint_axes()[0], self.rot_error())

    def ik_step(self) -> torch.Tensor:
        column, axis = self.jacobian()
        c = self.cfg
        return terms.ik_step(
            column, axis, self.pos_error(), self.rot_error(), c.ik_damping, c.ik_rot_weight
        )

    def gravity_sag(self) -> torch.Tensor:
        quat, pos = self.sim.body_quat.float(), self.sim.body_pos.float()
        return terms.gravity_sag(self.arm, pos, quat, *terms.joint_axes(self.arm, pos, quat))

    def obs_terms(self) -> list[ObsTerm]:
        terms = self._base_terms() + (self._jacobian_terms() if self.cfg.jacobian_obs else [])
        if self.cfg.ik_obs:
            doc = "damped-least-squares IK step toward the target, per joint"
            terms.append(ObsTerm("ik_step", ReachTask.ik_step, "rad", "joint", doc))
        if self.cfg.gravity_obs:
            doc = "gravity torque over kp: the PD's deflection under gravity, per joint"
            terms.append(ObsTerm("gravity_sag", ReachTask.gravity_sag, "rad", "joint", doc))
        return terms

    def _jacobian_terms(self) -> list[ObsTerm]:
        return [
            ObsTerm("jac_pos_error", ReachTask.jac_pos_error, "m^2 x 10", "joint",
                    "each joint's Jacobian column dotted with the position error"),
            ObsTerm("jac_rot_error", ReachTask.jac_rot_error, "rad", "joint",
                    "each joint's world axis dotted with the rotation error"),
        ]  # fmt: skip

    def _base_terms(self) -> list[ObsTerm]:
        return [
            ObsTerm(
                "joint_pos",
                Task.joint_pos_rel,
                "rad",
                "joint",
                "arm joint angles minus the default pose",
                0.005,
            ),
            ObsTerm("joint_vel", Task.joint_vel, "rad/s", "joint", "arm joint velocities", 0.05),
            ObsTerm("ee_pos", ReachTask.ee_pos, "m", "world", "end-effector position", 0.001),
            ObsTerm("target_pos", lambda t: t.target_pos, "m", "world", "target position"),
            ObsTerm(
                "pos_error",
                ReachTask.pos_error,
                "m",
                "world",
                "target minus end-effector position",
                0.001,
            ),
            ObsTerm(
                "rot_error",
                ReachTask.rot_error,
                "rad",
                "world",
                "rotation vector from end-effector to target orientation",
                0.005,
            ),
            ObsTerm(
                "last_action",
                Task.last_action,
                "1",
                "action",
                "previous policy output (before scaling)",
            ),
        ]

    def reward_terms(self) -> list[RewardTerm]:
        dist = lambda t: t.pos_error().norm(dim=1)  # noqa: E731
        angle = lambda t: t.rot_error().norm(dim=1)  # noqa: E731
        return [
            RewardTerm("position", lambda t: 1 - torch.tanh(dist(t) / 0.1), 1.0),
            RewardTerm("position_fine", lambda t: torch.exp(-dist(t) / 0.01), 1.0),
            RewardTerm("orientation", lambda t: 1 - torch.tanh(angle(t) / 0.4), 0.5),
            RewardTerm("orientation_fine", lambda t: torch.exp(-angle(t) / 0.05), 0.5),
            RewardTerm("in_tolerance", lambda t: t.in_tolerance().float(), 2.0),
            RewardTerm("action_rate", Task.action_rate, -0.01),
            RewardTerm("joint_vel", lambda t: t.joint_vel().square().sum(1), -1e-3),
        ]

    def metrics(self) -> dict[str, torch.Tensor]:
        return {
            "pos_error_m": self.pos_error().norm(dim=1),
            "rot_error_rad": self.rot_error().norm(dim=1),
        }

    def in_tolerance(self) -> torch.Tensor:
        """(N,) bool: position and orientation errors both inside the success tolerances."""
        return (self.pos_error().norm(dim=1) < self.cfg.success_pos) & (
            self.rot_error().norm(dim=1) < self.cfg.success_rot
        )

    def post_step(self) -> None:
        close = self.in_tolerance()
        self.held = torch.where(
            close, self.held + 1.0 / self.cfg.control_hz, torch.zeros_like(self.held)
        )

    def success(self) -> torch.Tensor:
        return self.held >= self.cfg.success_hold_s - 1e-6

    # --- episodes -----------------------------------------------------------------------
    def reset_envs(self, env_ids: torch.Tensor) -> None:
        """Targets by rejection sampling through MuJoCo's forward kinematics on the host
        (numpy `self.rng`), then one copy to the device."""
        self.held[env_ids] = 0.0
        m, d = self.sim.model, self._fk
        lo = m.jnt_range[[m.joint(n).id for n in self.joint_names], 0]
        hi = m.jnt_range[[m.joint(n).id for n in self.joint_names], 1]
        default = self.default_pose.cpu().numpy()
        adr = self.actuated_qadr.cpu().numpy()
        pos, quats = np.empty((len(env_ids), 3)), np.empty((len(env_ids), 4))
        for k in range(len(env_ids)):
            for _ in range(20):
                q = np.clip(
                    default + self.rng.uniform(-1, 1, len(default)) * self.cfg.target_spread, lo, hi
                )
                mujoco.mj_resetDataKeyframe(m, d, 0)
                d.qpos[adr] = q
                mujoco.mj_kinematics(m, d)
                if d.site_xpos[self._site][2] >= self.cfg.min_height:
                    break
            pos[k] = d.site_xpos[self._site]
            mujoco.mju_mat2Quat(quats[k], d.site_xmat[self._site])
        put = lambda x: torch.as_tensor(x, dtype=torch.float32, device=self.device)  # noqa: E731
        self.target_pos[env_ids] = put(pos)
        self.target_quat[env_ids] = put(quats)
        # the target marker (a mocap body) shows where the target is in pictures
        self.sim.reset(env_ids, mocap_pos=self.target_pos[env_ids, None, :])
