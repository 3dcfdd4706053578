"""The cabinet-opening task of the twin-against-cousins experiment: one arm, one cabinet,
plain MuJoCo, and the privileged teacher that solves it.

Task interface (the same in every scene): actions are end-effector displacements (m per
control step, `step_m` x a value in [-1, 1], in the arm's frame: +x towards the cabinet)
turned into joint targets by damped least squares from the measured joints, plus a grip
command (> 0 closes the fingers). A closing grip within `grasp_radius` of the handle holds
it: an equality constraint (connect) between the drawer and the hand is switched on, a
stand-in for a grasp that this simple gripper cannot make on every handle shape; opening
the grip lets go. Observation: the arm's joint angles (from the home pose), the end
effector's position (arm frame), whether it holds the handle, and what a wrist camera sees
of the handle: its position relative to the end effector with `detect_noise` m noise and a
visibility flag, or zeros when it is farther than `detect_range` or behind the hand.
Success: the drawer opens at least `open_m` (a door `open_rad`) within the episode.

The teacher knows the true handle and the part's axis: it moves in front of the handle,
onto it, grips, and pulls along the slide (or the door's arc).

The task runs one MjData, not the batched env of xembody.sim.tasks; the settings it reads
are `ExperimentConfig`'s (experiment.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from xembody.sim.scenes.assets import Asset, add_asset
from xembody.sim.tasks.math import dls_step

if TYPE_CHECKING:
    from .experiment import ExperimentConfig

PARTS = {"drawer": "n_drawers", "door": "n_doors"}  # the task -> the asset's part count


@dataclass(frozen=True)
class Cabinet:
    """A cabinet asset and its pose in the arm's frame (box centre, yaw of its front)."""

    name: str
    asset: Asset
    pos: tuple[float, float, float]
    yaw: float
    distance: float = 0.0  # feature distance from the twin

    def describe(self) -> dict:
        """Its size, position and the asset parameters the report records."""
        keys = ("n_drawers", "n_doors", "handle", "handle_place", "door_handle_place",
                "drawer_travel", "door_range", "slide_damping", "hinge_damping")  # fmt: skip
        return {"size": list(self.asset.size), "pos": [round(float(v), 4) for v in self.pos],
                **{k: self.asset.params.get(k) for k in keys}}  # fmt: skip


class OpenTask:
    """One arm and one cabinet in plain MuJoCo; `reset(rng)`, `obs()`, `step(action)`;
    the part to open is the cabinet's top drawer ("drawer0") or its first door ("door0")."""

    def __init__(self, arm, cab: Cabinet, cfg: ExperimentConfig):
        self.cfg = cfg
        spec = arm.spec()
        for k in list(spec.keys):
            spec.delete(k)
        add_asset(spec.worldbody, cab.asset, "cab", cab.pos, cab.yaw, degree=spec.compiler.degree)
        # the wall the cabinet stands against in the room, just behind its back
        back = np.asarray(cab.pos[:2]) - (cab.asset.size[0] / 2 + 0.06) * np.array(
            [math.cos(cab.yaw), math.sin(cab.yaw)]
        )
        spec.worldbody.add_geom(
            name="wall", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.05, 1.5, 1.25],
            pos=[*back, 1.25], quat=[math.cos(cab.yaw / 2), 0, 0, math.sin(cab.yaw / 2)],
        )  # fmt: skip
        if cfg.task not in PARTS:
            raise ValueError(f"task={cfg.task!r}, expected one of {sorted(PARTS)}")
        part = f"cab/{cfg.task}0"
        m0 = arm.compile()
        ee_body = m0.body(m0.site_bodyid[m0.site(arm.sensors.ee_site).id]).name
        eq = spec.add_equality(
            name="grasp", type=mujoco.mjtEq.mjEQ_CONNECT, objtype=mujoco.mjtObj.mjOBJ_BODY,
            name1=part, name2=ee_body, active=False,
        )  # fmt: skip
        del eq
        # the arm does not collide with the cabinet: the grasp constraint is what couples them
        cab_bodies = [b.name for b in spec.bodies if b.name == "cab" or b.name.startswith("cab/")]
        arm_bodies = [b.name for b in spec.bodies if b.name not in cab_bodies and b.name != "world"]
        for a in arm_bodies:
            for b in cab_bodies:
                spec.add_exclude(bodyname1=a, bodyname2=b)
        self.m = m = spec.compile()
        self.d = mujoco.MjData(m)
        self.n_sub = max(1, round(1.0 / (cfg.control_hz * m.opt.timestep)))
        self.steps = round(cfg.episode_s * cfg.control_hz)
        names = [j for j in arm.joint_names if j != "gripper"]
        self.arm_q = m.jnt_qposadr[[m.joint(n).id for n in names]]
        self.arm_v = m.jnt_dofadr[[m.joint(n).id for n in names]]
        self.arm_ctrl = np.array([m.actuator(n).id for n in names])
        self.grip_ctrl = m.actuator("gripper").id
        self.stroke = float(m.jnt_range[m.joint("gripper").id][1])
        self.lo, self.hi = m.jnt_range[[m.joint(n).id for n in names]].T
        home = np.asarray(arm.default_pose, float)
        self.home = home[[arm.joint_names.index(n) for n in names]]
        self.site = m.site(arm.sensors.ee_site).id
        self.part = m.body(part).id
        self.joint = m.joint(part).id
        self.joint_q = m.jnt_qposadr[self.joint]
        self.hinge = m.jnt_type[self.joint] == mujoco.mjtJoint.mjJNT_HINGE
        self.goal = cfg.open_rad if self.hinge else cfg.open_m
        self.handle = m.geom(f"{part}/handle").id
        self.eq = m.equality("grasp").id
        # the connect constraint joins the handle point (part frame) and the ee site (hand)
        m.eq_data[self.eq, 0:3] = m.geom_pos[self.handle]
        m.eq_data[self.eq, 3:6] = m.site_pos[self.site]
        free = m.joint("cab/free")
        self.free_q = m.jnt_qposadr[free.id]
        self.cab_pos, self.cab_yaw = np.asarray(cab.pos, float), float(cab.yaw)
        self.jac = np.zeros((3, m.nv))
        self.obs_dim = len(names) + 3 + 1 + 4
        self.grasped = False

    # world <-> arm frame: the arm base sits at the world origin facing +x, so they agree
    def reset(self, rng: np.random.Generator) -> np.ndarray:
        m, d, cfg = self.m, self.d, self.cfg
        mujoco.mj_resetData(m, d)
        d.eq_active[self.eq] = 0
        self.grasped = False
        q = np.clip(self.home + rng.uniform(-cfg.start_noise, cfg.start_noise, len(self.home)),
                    self.lo, self.hi)  # fmt: skip
        d.qpos[self.arm_q] = q
        d.qpos[m.jnt_qposadr[m.joint("gripper").id]] = self.stroke
        d.ctrl[self.arm_ctrl] = self.q_cmd = q
        d.ctrl[self.grip_ctrl] = self.stroke
        dx, dy = rng.uniform(-cfg.jitter_m, cfg.jitter_m, 2)
        yaw = self.cab_yaw + rng.uniform(-cfg.jitter_rad, cfg.jitter_rad)
        a = self.free_q
        d.qpos[a : a + 3] = self.cab_pos + [dx, dy, 0.0]
        d.qpos[a + 3 : a + 7] = [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
        mujoco.mj_forward(m, d)
        self.rng = rng
        return self.obs()

    def ee(self) -> np.ndarray:
        return self.d.site_xpos[self.site].copy()

    def handle_pos(self) -> np.ndarray:
        return self.d.geom_xpos[self.handle].copy()

    def opening(self) -> float:
        """The part's joint position: m (drawer) or rad (door)."""
        return float(self.d.qpos[self.joint_q])

    def success(self) -> bool:
        return self.opening() >= self.goal

    def pull_dir(self) -> np.ndarray:
        """World direction in which the handle moves as the part opens."""
        d, j = self.d, self.joint
        if not self.hinge:
            return d.xaxis[j].copy()
        t = np.cross(d.xaxis[j], self.handle_pos() - d.xanchor[j])
        return t / max(np.linalg.norm(t), 1e-9)

    def obs(self) -> np.ndarray:
        cfg = self.cfg
        ee = self.ee()
        rel = self.handle_pos() - ee
        seen = np.linalg.norm(rel) < cfg.detect_range and rel[0] > -0.05
        det = rel + self.rng.normal(0, cfg.detect_noise, 3) if seen else np.zeros(3)
        q = self.d.qpos[self.arm_q] - self.home
        return np.concatenate([q, ee, [float(self.grasped), float(seen)], det]).astype(np.float32)

    def step(self, action: np.ndarray) -> np.ndarray:
        m, d, cfg = self.m, self.d, self.cfg
        a = np.clip(np.asarray(action, float), -1.0, 1.0)
        dx = cfg.step_m * a[:3]
        mujoco.mj_jacSite(m, d, self.jac, None, self.site)
        jac = self.jac[:, self.arm_v]
        dq = dls_step(jac, dx, 0.05)
        # targets accumulate (the servos' gravity sag stays a constant offset instead of
        # eating each small step); they stay within `lead` rad of the measured joints
        q = d.qpos[self.arm_q]
        lead = 0.25
        self.q_cmd = np.clip(np.clip(self.q_cmd + dq, q - lead, q + lead), self.lo, self.hi)
        d.ctrl[self.arm_ctrl] = self.q_cmd
        close = a[3] > 0
        d.ctrl[self.grip_ctrl] = 0.0 if close else self.stroke
        if close and not self.grasped:
            if np.linalg.norm(self.handle_pos() - self.ee()) < cfg.grasp_radius:
                self.grasped = True
                d.eq_active[self.eq] = 1
        elif not close and self.grasped:
            self.grasped = False
            d.eq_active[self.eq] = 0
        mujoco.mj_step(m, d, self.n_sub)
        return self.obs()


def teacher(task: OpenTask) -> np.ndarray:
    """Privileged scripted action: in front of the handle, onto it, grip, pull."""
    cfg = task.cfg
    ee, h, out = task.ee(), task.handle_pos(), task.pull_dir()
    if task.grasped:
        goal, grip = ee + 1.5 * cfg.step_m * out, 1.0
    else:
        rel = ee - h
        along = float(rel @ out)
        lateral = np.linalg.norm(rel - along * out)
        near = np.linalg.norm(rel) < 0.8 * cfg.grasp_radius
        if lateral > 0.02 or along < 0.0:
            goal = h + 0.06 * out  # in front of the handle first
        else:
            goal = h + 0.005 * out
        grip = 1.0 if near else -1.0
    act = np.clip(0.5 * (goal - ee) / cfg.step_m, -1, 1)
    return np.concatenate([act, [grip]])


def run_episode(task: OpenTask, rng: np.random.Generator, policy=None, noise: float = 0.0):
    """(observations, teacher actions, success, final opening) of one episode; `policy`
    (obs -> action) drives when given, else the teacher with `noise` added (DART)."""
    obs = task.reset(rng)
    xs, ys = [], []
    for _ in range(task.steps):
        target = teacher(task)
        xs.append(obs)
        ys.append(target)
        if policy is None:
            act = target.copy()
            act[:3] += rng.normal(0, noise, 3)
        else:
            act = policy(obs)
        obs = task.step(act)
        if task.success():
            break
    return np.array(xs), np.array(ys), task.success(), task.opening()
