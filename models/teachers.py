"""Scripted teachers: controllers that solve a task on any body without learning, used to
generate demonstrations for the imitation-learned base policy.

A teacher is called like a policy on a `BodyEnv`: `teacher(obs) -> actions (N, num_actions)`
in the task's action units. Teachers may read the simulator (they are privileged experts);
the policies trained from them see only the task's observation.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from xembody.sim.bodies.embodiment import joint_kp
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.math import dls_step


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
        self.kp = joint_kp(m, [j.id for j in joints])
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
            dq = dls_step(jac, err, self.damping)
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


class ReachDiffIKTeacher:
    """Reach by differential inverse kinematics with gravity feed-forward, for any arm,
    from the policy observation alone (so it is evaluated like a policy too).

    Each step: target = joint angle + `gain` x ik_step + gravity_sag, i.e. take the
    damped-least-squares step toward the target pose and offset it by the deflection
    the joint's PD will settle at under gravity. Needs the reach task's `ik_obs` and
    `gravity_obs` terms. Its actions are a local, nearly linear function of the inputs on
    every arm, which a joint-token student can copy onto arms it has not seen; the
    `ReachIKTeacher` above jumps to a whole-arm IK solution instead."""

    def __init__(self, env: BodyEnv, *, gain: float = 1.0) -> None:
        from xembody.models.export import obs_layout

        terms = {t["name"]: slice(t["start"], t["start"] + t["size"]) for t in obs_layout(env)}
        missing = [n for n in ("joint_pos", "ik_step", "gravity_sag") if n not in terms]
        if env.task.name != "reach" or missing:
            raise ValueError(
                f"ReachDiffIKTeacher needs the reach task with ik_obs and gravity_obs; "
                f"task {env.task.name!r} lacks {missing}"
            )
        self.terms, self.gain = terms, gain
        self.scale, self.clip = env.task.cfg.action_scale, env.task.cfg.action_clip

    def __call__(self, obs) -> torch.Tensor:
        o = obs if isinstance(obs, torch.Tensor) else obs["policy"]
        t = self.terms
        target = o[:, t["joint_pos"]] + self.gain * o[:, t["ik_step"]] + o[:, t["gravity_sag"]]
        return (target / self.scale).clamp(-self.clip, self.clip)


class NavigatePlannerTeacher:
    """Navigate by planning on a grid, then following the plan, for any wheeled base.

    Planner: when an episode starts, the env's obstacles (privileged: the task's own
    layout) are rasterised on a `resolution` grid, grown by the robot's circumradius plus
    `margin`, and a cost-to-go field to the goal is computed by wavefront relaxation over
    8-neighbour moves (all resetting envs at once, in torch); cells within `clearance` of a
    grown obstacle cost `near_cost` times more, so the plan keeps away from walls when it
    can. Follower: each step, of `num_probes` points on a circle of `lookahead` m around the
    robot, the one with the lowest cost-to-go is the aim. A differential base turns toward
    it (yaw rate `turn_gain` x bearing) and drives at `speed` x cos^2(bearing), never
    backward and slowly while turning; an omnidirectional base drives straight at it. Near
    the goal it aims at the goal."""

    def __init__(
        self,
        env: BodyEnv,
        *,
        resolution: float = 0.1,
        margin: float = 0.06,
        clearance: float = 0.2,
        near_cost: float = 4.0,
        lookahead: float = 0.35,
        num_probes: int = 32,
        speed: float = 0.8,
        turn_gain: float = 2.5,
    ) -> None:
        task = env.task
        if task.name != "navigate":
            raise ValueError(f"NavigatePlannerTeacher drives the navigate task, not {task.name!r}")
        self.env, self.task = env, task
        self.res, self.lookahead, self.speed, self.turn_gain = (
            resolution, lookahead, speed, turn_gain,
        )  # fmt: skip
        self.grow = task.radius + margin
        self.clearance, self.near_cost = clearance, near_cost
        extent = max(task.cfg.goal_distance) + 1.5  # m around the start: room for detours
        self.size = int(2 * extent / resolution) + 1
        self.origin = -extent
        c = torch.arange(self.size) * resolution + self.origin
        self.gx, self.gy = torch.meshgrid(c, c, indexing="ij")  # cell centres, (S, S)
        self.cost = torch.zeros(env.num_envs, self.size, self.size)
        a = torch.arange(num_probes) * (2 * math.pi / num_probes)
        self.probes = torch.stack([torch.cos(a), torch.sin(a)], 1) * lookahead  # (P, 2)

    def plan(self, ids: torch.Tensor) -> None:
        """Cost-to-go fields of envs `ids` from their goals and obstacles."""
        t, n = self.task, len(ids)
        centre = t.obstacles[ids].cpu()[..., None, None]  # (n, K, 2, 1, 1)
        half = t.obstacle_half.cpu()[None, :, :, None, None]  # (1, K, 2, 1, 1)
        dx = (self.gx - centre[:, :, 0]).abs() - half[:, :, 0]  # (n, K, S, S)
        dy = (self.gy - centre[:, :, 1]).abs() - half[:, :, 1]
        dist = torch.hypot(dx.clamp_min(0), dy.clamp_min(0)).amin(1)  # (n, S, S) to nearest box
        blocked = dist < self.grow
        blocked[:, [0, -1], :] = True  # the border: torch.roll below wraps around
        blocked[:, :, [0, -1]] = True
        step = torch.where(dist < self.grow + self.clearance, self.near_cost, 1.0) * self.res
        goal = t.goal[ids].cpu()
        field = torch.full((n, self.size, self.size), math.inf)
        gi = ((goal - self.origin) / self.res).round().long().clamp(0, self.size - 1)
        field[torch.arange(n), gi[:, 0], gi[:, 1]] = 0.0
        moves = [(1, 0, 1.0), (-1, 0, 1.0), (0, 1, 1.0), (0, -1, 1.0)]
        moves += [(i, j, math.sqrt(2)) for i in (1, -1) for j in (1, -1)]
        for _ in range(4 * self.size):
            best = field.clone()
            for i, j, w in moves:
                shifted = torch.roll(field, (i, j), (1, 2))
                best = torch.minimum(best, shifted + w * step)
            best[blocked] = math.inf
            if torch.equal(best, field):
                break
            field = best
        self.cost[ids] = field

    def _lookup(self, points: torch.Tensor) -> torch.Tensor:
        """Cost-to-go at world points (N, P, 2) of each env's field (outside: inf)."""
        idx = ((points - self.origin) / self.res).round().long()
        inside = ((idx >= 0) & (idx < self.size)).all(-1)
        idx = idx.clamp(0, self.size - 1)
        n = torch.arange(points.shape[0])[:, None]
        values = self.cost[n, idx[..., 0], idx[..., 1]]
        return torch.where(inside, values, math.inf)

    def __call__(self, obs=None) -> torch.Tensor:
        t, env = self.task, self.env
        fresh = torch.nonzero(env.episode_length_buf == 0).flatten().cpu()
        if len(fresh):
            self.plan(fresh)
        pos, yaw = (x.cpu() for x in t.base_pose())
        goal = t.goal.cpu()
        probes = pos[:, None] + self.probes[None]  # (N, P, 2)
        values = self._lookup(probes)
        aim = probes[torch.arange(len(pos)), values.argmin(1)]
        near = (goal - pos).norm(dim=1) < self.lookahead
        aim = torch.where(near[:, None], goal, aim)
        d = aim - pos
        c, s = torch.cos(yaw), torch.sin(yaw)
        fx, fy = c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]  # base yaw frame
        cfg = t.cfg
        if t.omni:
            v = torch.stack([fx, fy], 1)
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-6) * self.speed
            action = torch.stack([v[:, 0] / cfg.action_scale, v[:, 1] / cfg.action_scale,
                                  torch.zeros_like(fx)], 1)  # fmt: skip
        else:
            bearing = torch.atan2(fy, fx)
            vx = self.speed * torch.cos(bearing).clamp_min(0) ** 2
            wz = self.turn_gain * bearing
            action = torch.stack([vx / cfg.action_scale, wz / cfg.turn_scale], 1)
        return action.clamp(-cfg.action_clip, cfg.action_clip).to(t.device)


class CabinetTeacher:
    """Open the cabinet task's drawer or door, for any arm that reaches it.

    Privileged: it reads the true handle, the part's pull direction and whether the grasp
    holds. Not holding: it aims `standoff` m in front of the handle (along the pull
    direction) until the hand is within `lateral` m of that line and in front of the
    handle, then onto it (`touch` m in front); the grip closes once the hand is within
    `close_share` x grasp_radius of the handle. Holding: it moves `pull` action units per
    step along the pull direction (the slide, or the door's arc). The displacement action
    is `gain` x (aim - hand) in action units, clipped to +-1."""

    def __init__(
        self,
        env: BodyEnv,
        *,
        standoff: float = 0.06,
        touch: float = 0.005,
        lateral: float = 0.02,
        close_share: float = 0.8,
        pull: float = 1.5,
        gain: float = 0.5,
    ) -> None:
        if env.task.name != "cabinet":
            raise ValueError(f"CabinetTeacher drives the cabinet task, not {env.task.name!r}")
        self.task = env.task
        self.standoff, self.touch, self.lateral = standoff, touch, lateral
        self.close_share, self.pull, self.gain = close_share, pull, gain

    def __call__(self, obs=None) -> torch.Tensor:
        t = self.task
        step = t.cfg.action_scale
        ee, handle, out = t.ee_pos(), t.handle_pos(), t.pull_dir()
        rel = ee - handle
        along = (rel * out).sum(1, keepdim=True)
        off_line = (rel - along * out).norm(dim=1, keepdim=True)
        ahead = (off_line > self.lateral) | (along < 0)
        aim = handle + torch.where(ahead, self.standoff, self.touch) * out
        aim = torch.where(t.grasped[:, None], ee + self.pull * step * out, aim)
        near = rel.norm(dim=1) < self.close_share * t.cfg.grasp_radius
        grip = torch.where(t.grasped | near, 1.0, -1.0)
        move = (self.gain * (aim - ee) / step).clamp(-1.0, 1.0)
        return torch.cat([move, grip[:, None]], 1)
