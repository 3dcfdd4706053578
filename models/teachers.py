"""Scripted teachers: controllers that solve a task on any body without learning, used to
generate demonstrations for the imitation-learned base policy.

A teacher is called like a policy on a `BodyEnv`: `teacher(obs) -> actions (N, num_actions)`
in the task's action units. Teachers may read the simulator (they are privileged experts);
the policies trained from them see only the task's observation.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from xembody.sim.env import BodyEnv


class ReachIKTeacher:
    """Reach by inverse kinematics, for any arm.

    When an episode starts, damped least squares on the end-effector site Jacobian (MuJoCo
    kinematics of the body's own model, from the current angles) solves for joint angles
    that put the end effector on the target pose: dq = J^T (J J^T + damping^2 I)^-1 e,
    e = (position error, `rot_weight` * rotation vector), `iterations` steps of at most
    `max_step` rad, within the joint limits. The commanded target adds the PD deflection
    that gravity will cause at that pose (gravity torque / kp), so the arm settles on the
    solution. Each step the action is that target as the task's offset from the default
    pose, in action units, approached at most `rate` rad per control step."""

    def __init__(
        self,
        env: BodyEnv,
        *,
        damping: float = 0.02,
        rot_weight: float = 0.5,
        max_step: float = 0.2,
        iterations: int = 60,
        rate: float = 0.5,
    ) -> None:
        task = env.task
        if task.name != "reach":
            raise ValueError(f"ReachIKTeacher drives the reach task, not {task.name!r}")
        self.env, self.task = env, task
        self.damping, self.rot_weight, self.max_step = damping, rot_weight, max_step
        self.iterations, self.rate = iterations, rate
        m = env.sim.model
        self.model, self.data = m, mujoco.MjData(m)
        joints = [m.joint(n) for n in task.joint_names]
        self.qadr = np.array([j.qposadr[0] for j in joints])
        self.dofs = np.array([j.dofadr[0] for j in joints])
        self.lo = np.array([m.jnt_range[j.id][0] for j in joints])
        self.hi = np.array([m.jnt_range[j.id][1] for j in joints])
        acts = [next(a for a in range(m.nu) if m.actuator_trnid[a, 0] == j.id) for j in joints]
        self.kp = np.array([m.actuator_gainprm[a, 0] for a in acts])
        self.site = m.site(task.emb.sensors.ee_site).id
        self.default = task.default_pose.numpy().astype(np.float64)
        self.goal = np.tile(self.default, (env.num_envs, 1))  # solved joint targets
        self.command = self.goal.copy()  # what was sent last (rate-limited toward goal)
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))

    def solve(self, qpos: np.ndarray, target_pos: np.ndarray, target_quat: np.ndarray):
        """Joint angles (policy joints) for the target pose, from the state `qpos`."""
        m, d = self.model, self.data
        d.qpos[:] = qpos
        d.qvel[:] = 0
        eye = self.damping**2 * np.eye(6)
        quat, err_rot = np.zeros(4), np.zeros(3)
        for _ in range(self.iterations):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mju_mat2Quat(quat, d.site_xmat[self.site])
            neg = np.zeros(4)
            mujoco.mju_negQuat(neg, quat)
            diff = np.zeros(4)
            mujoco.mju_mulQuat(diff, target_quat, neg)
            mujoco.mju_quat2Vel(err_rot, diff, 1.0)
            err = np.concatenate([target_pos - d.site_xpos[self.site], self.rot_weight * err_rot])
            if np.linalg.norm(err) < 1e-5:
                break
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self.site)
            jac = np.vstack([self._jacp[:, self.dofs], self.rot_weight * self._jacr[:, self.dofs]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + eye, err)
            q = d.qpos[self.qadr] + np.clip(dq, -self.max_step, self.max_step)
            d.qpos[self.qadr] = np.clip(q, self.lo, self.hi)
        solution = d.qpos[self.qadr].copy()
        mujoco.mj_forward(m, d)  # gravity torque at the solution (zero velocity)
        sag = d.qfrc_bias[self.dofs] / np.maximum(self.kp, 1e-9)
        return np.clip(solution + sag, self.lo, self.hi)

    def __call__(self, obs=None) -> torch.Tensor:
        env, task = self.env, self.task
        qpos = env.sim.qpos.numpy().astype(np.float64)
        fresh = (env.episode_length_buf == 0).numpy()
        for i in np.flatnonzero(fresh):
            self.goal[i] = self.solve(
                qpos[i], task.target_pos[i].numpy(), task.target_quat[i].numpy()
            )
            self.command[i] = qpos[i, self.qadr]
        step = np.clip(self.goal - self.command, -self.rate, self.rate)
        self.command = self.command + step
        cfg = task.cfg
        action = (self.command - self.default) / cfg.action_scale
        return torch.from_numpy(np.clip(action, -cfg.action_clip, cfg.action_clip)).float()
