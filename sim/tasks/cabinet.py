"""Opening a cabinet's top drawer or first door with an arm (task id `cabinet`).

The scene is the arm and one articulated cabinet (sim/scenes/cabinet.py) given by the
config's `cabinet`: the asset (`size`, `params`, as `Asset` holds them) and its pose in the
arm's frame (`pos`, the box centre; `yaw`, the direction its front faces), with a wall just
behind it. `part` picks the part to open: "drawer" (drawer 0, the top one) or "door"
(door 0). Each episode jitters the cabinet's pose by +-`jitter_m` m and +-`jitter_rad` rad
and the arm's start by +-`start_noise` rad per joint.

Actions: an end-effector displacement, `action_scale` m per control step at 1 (arm frame:
the arm's base is the world origin, +x towards the cabinet), turned into joint targets by a
damped-least-squares step on the arm's Jacobian; targets accumulate, within `lead` rad of
the measured joints. Then a grip command: > 0 closes the fingers. A closing grip within
`grasp_radius` of the handle holds it until the grip opens: a spring-damper between the
handle and the hand (`grasp_stiffness`, `grasp_damping`) is switched on, a stand-in for a
grasp that the generated gripper cannot make on every handle shape. The arm does not
collide with the cabinet; the grasp is what couples them.

What a wrist camera sees of the handle: its offset from the hand while it is nearer than
`detect_range` and not behind the hand, else zeros, with `detect_noise` m noise.
Success: the drawer opens at least `open_m` (a door `open_rad`) during the episode.

`CabinetTeacher` (xembody.models.teachers) solves it from privileged state; the
twin-against-cousins experiment (xembody.models.cousins) runs it on scanned scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import torch

from ..scenes.assets import Asset, add_asset, sample_asset
from . import terms
from .base import ObsTerm, RewardTerm, Task, TaskConfig
from .math import dls_step, quat_rotate
from .terms import ArmKinematics

PARTS = {"drawer": "n_drawers", "door": "n_doors"}  # the part -> the asset's count of it


def cabinet_scene(asset: Asset, pos, yaw: float) -> dict:
    """The config's `cabinet` value: a cabinet asset at `pos` (box centre, m) facing `yaw`."""
    return {"size": [float(v) for v in asset.size], "params": dict(asset.params),
            "pos": [float(v) for v in pos], "yaw": float(yaw)}  # fmt: skip


def default_cabinet() -> dict:
    """Two drawers over one door (mid-range styles), its front 0.8 m ahead, facing the arm."""
    asset = sample_asset("cabinet", (0.45, 0.6, 0.8), {"n_drawers": 2, "n_doors": 1}, seed=0)
    d, _, h = asset.size
    return cabinet_scene(asset, (round(0.8 + d / 2, 4), 0.0, h / 2), -math.pi)


@dataclass(kw_only=True)
class CabinetConfig(TaskConfig):
    episode_seconds: float = 2.4
    control_hz: float = 25.0
    action_scale: float = 0.02  # m of end-effector travel per control step at action 1
    action_clip: float = 1.0
    part: str = "drawer"  # open the top drawer, or "door": door 0
    cabinet: dict = field(default_factory=default_cabinet)  # size, params, pos, yaw
    open_m: float = 0.10  # m of drawer travel for success
    open_rad: float = 0.5  # rad of door opening for success
    grasp_radius: float = 0.03  # m, hand to handle, for a closing grip to hold
    grasp_stiffness: float = 2000.0  # N/m, the grasp's spring
    grasp_damping: float = 50.0  # N s/m
    detect_range: float = 0.30  # m, farthest the wrist camera sees the handle
    detect_noise: float = 0.003  # m, std of the seen handle offset
    jitter_m: float = 0.02  # cabinet position jitter per episode (uniform +-)
    jitter_rad: float = 0.04  # cabinet yaw jitter per episode
    start_noise: float = 0.05  # rad, arm start pose per joint (uniform +-)
    ik_damping: float = 0.05
    lead: float = 0.25  # rad, farthest a joint target runs ahead of the joint

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.part not in PARTS:
            raise ValueError(f"part={self.part!r}, expected one of {sorted(PARTS)}")
        missing = sorted({"size", "params", "pos", "yaw"} - set(self.cabinet))
        if missing:
            raise ValueError(f"cabinet lacks {missing}; expected size, params, pos and yaw")
        count = self.cabinet["params"].get(PARTS[self.part], 0)
        if count < 1:
            raise ValueError(
                f"cabinet has {PARTS[self.part]}={count}, expected at least 1 for "
                f"part={self.part!r}"
            )


class CabinetTask(Task):
    body_classes = ("arm",)
    name = "cabinet"
    action_names = ("ee_dx", "ee_dy", "ee_dz", "grip")
    cfg: CabinetConfig

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.emb.joint_names if n != "gripper")

    @property
    def num_actions(self) -> int:
        return len(self.action_names)

    @property
    def part(self) -> str:
        """The moving body (and joint) to open: "cab/drawer0" or "cab/door0"."""
        return f"cab/{self.cfg.part}0"

    def build_model(self) -> mujoco.MjModel:
        c = self.cfg.cabinet
        asset = Asset(category="cabinet", size=tuple(c["size"]), params=c["params"])
        spec = self.emb.spec()
        for key in list(spec.keys):  # the body's keyframe lacks the cabinet's joints
            spec.delete(key)
        yaw = float(c["yaw"])
        add_asset(spec.worldbody, asset, "cab", c["pos"], yaw, degree=spec.compiler.degree)
        back = [c["pos"][i] - (asset.size[0] / 2 + 0.06) * f
                for i, f in enumerate((math.cos(yaw), math.sin(yaw)))]  # fmt: skip
        spec.worldbody.add_geom(
            name="wall", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.05, 1.5, 1.25],
            pos=[*back, 1.25], quat=[math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)],
        )  # fmt: skip
        cab = [b.name for b in spec.bodies if b.name == "cab" or b.name.startswith("cab/")]
        for a in (b.name for b in spec.bodies if b.name not in cab and b.name != "world"):
            for b in cab:
                spec.add_exclude(bodyname1=a, bodyname2=b)
        # the grasp: a tendon from a site on the handle to the hand's site, pulled by an
        # actuator whose force is ctrl * (-k length - d velocity): ctrl 1 holds, 0 lets go
        handle = spec.compile().geom(f"{self.part}/handle")
        spec.body(self.part).add_site(name="handle", pos=handle.pos.tolist())
        tendon = spec.add_tendon(name="grasp")
        tendon.wrap_site("handle")
        tendon.wrap_site(self.emb.sensors.ee_site)
        k, d = self.cfg.grasp_stiffness, self.cfg.grasp_damping
        spec.add_actuator(
            name="grasp", target="grasp", trntype=mujoco.mjtTrn.mjTRN_TENDON,
            gaintype=mujoco.mjtGain.mjGAIN_AFFINE, gainprm=[0, -k, -d] + [0] * 7,
            biastype=mujoco.mjtBias.mjBIAS_NONE, ctrllimited=True, ctrlrange=[0, 1],
        )  # fmt: skip
        return spec.compile()

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        m, dev = sim.model, self.device
        put = lambda x: torch.as_tensor(x, dtype=torch.float32, device=dev)  # noqa: E731
        self.arm = ArmKinematics.from_model(m, self.joint_names, device=dev)
        ids = [m.joint(n).id for n in self.joint_names]
        self.lo, self.hi = put(m.jnt_range[ids, 0]), put(m.jnt_range[ids, 1])
        ee, handle = m.site(self.emb.sensors.ee_site), m.site("handle")
        self._ee = (int(ee.bodyid[0]), put(ee.pos))
        self._handle = (int(handle.bodyid[0]), put(handle.pos))
        joint = m.joint(self.part)
        self.part_qadr = int(joint.qposadr[0])
        self.hinge = bool(joint.type[0] == mujoco.mjtJoint.mjJNT_HINGE)
        self.goal = self.cfg.open_rad if self.hinge else self.cfg.open_m
        self._axis, self._anchor = put(joint.axis), put(joint.pos)
        self._part_body = int(joint.bodyid[0])
        gripper = m.joint("gripper")
        self.grip_qadr, self.stroke = int(gripper.qposadr[0]), float(gripper.range[1])
        self.grip_ctrl = self.emb.joint_names.index("gripper")
        self.grasp_ctrl = m.actuator("grasp").id
        self.free_qadr = int(m.joint("cab/free").qposadr[0])
        self.qpos0 = torch.as_tensor(m.qpos0, device=dev)
        n = self.num_envs
        self.q_cmd = torch.zeros(n, len(ids), device=dev)
        self.grasped = torch.zeros(n, dtype=torch.bool, device=dev)

    # --- state --------------------------------------------------------------------------
    def _site(self, site: tuple[int, torch.Tensor]) -> torch.Tensor:
        body, local = site
        quat = self.sim.body_quat[:, body].float()
        return self.sim.body_pos[:, body].float() + quat_rotate(quat, local.expand(len(quat), 3))

    def ee_pos(self) -> torch.Tensor:
        return self._site(self._ee)

    def handle_pos(self) -> torch.Tensor:
        return self._site(self._handle)

    def opening(self) -> torch.Tensor:
        """(N,) the part's joint position: m (drawer) or rad (door)."""
        return self.sim.qpos[:, self.part_qadr].float()

    def pull_dir(self) -> torch.Tensor:
        """(N, 3) world direction in which the handle moves as the part opens."""
        quat = self.sim.body_quat[:, self._part_body].float()
        axis = quat_rotate(quat, self._axis.expand(len(quat), 3))
        if not self.hinge:
            return axis
        anchor = self.sim.body_pos[:, self._part_body].float() + quat_rotate(
            quat, self._anchor.expand(len(quat), 3)
        )
        tangent = torch.cross(axis, self.handle_pos() - anchor, dim=1)
        return tangent / tangent.norm(dim=1, keepdim=True).clamp_min(1e-9)

    def handle_seen(self) -> torch.Tensor:
        rel = self.handle_pos() - self.ee_pos()
        return (rel.norm(dim=1) < self.cfg.detect_range) & (rel[:, 0] > -0.05)

    # --- terms --------------------------------------------------------------------------
    def handle_offset(self) -> torch.Tensor:
        rel = self.handle_pos() - self.ee_pos()
        return torch.where(self.handle_seen()[:, None], rel, torch.zeros_like(rel))

    def obs_terms(self) -> list[ObsTerm]:
        return [
            ObsTerm("joint_pos", Task.joint_pos_rel, "rad", "joint",
                    "arm joint angles minus the default pose"),
            ObsTerm("ee_pos", CabinetTask.ee_pos, "m", "world",
                    "end-effector position (the arm's base is the origin)"),
            ObsTerm("grasped", lambda t: t.grasped.float()[:, None], "1", "-",
                    "1 while the grasp holds the handle"),
            ObsTerm("handle_seen", lambda t: t.handle_seen().float()[:, None], "1", "-",
                    "1 when the wrist camera sees the handle"),
            ObsTerm("handle_offset", CabinetTask.handle_offset, "m", "world",
                    "handle minus end-effector position when seen, else 0",
                    self.cfg.detect_noise),
        ]  # fmt: skip

    def reward_terms(self) -> list[RewardTerm]:
        dist = lambda t: (t.handle_pos() - t.ee_pos()).norm(dim=1)  # noqa: E731
        return [
            RewardTerm("reach", lambda t: 1 - torch.tanh(dist(t) / 0.1), 1.0),
            RewardTerm("grasp", lambda t: t.grasped.float(), 1.0),
            RewardTerm("open", lambda t: (t.opening() / t.goal).clamp(0, 1), 4.0),
            RewardTerm("action_rate", Task.action_rate, -0.01),
        ]

    def metrics(self) -> dict[str, torch.Tensor]:
        return {"opening": self.opening()}

    def success(self) -> torch.Tensor:
        return self.opening() >= self.goal

    # --- actions ------------------------------------------------------------------------
    def apply_actions(self, actions: torch.Tensor) -> None:
        c, sim = self.cfg, self.sim
        axis, anchor = terms.joint_axes(self.arm, sim.body_pos.float(), sim.body_quat.float())
        column, _ = terms.jacobian(axis, anchor, self.ee_pos())  # (N, J, 3)
        dq = dls_step(column.transpose(1, 2), c.action_scale * actions[:, :3], c.ik_damping)
        q = sim.qpos[:, self.actuated_qadr].float()
        self.q_cmd = (self.q_cmd + dq).clamp(q - c.lead, q + c.lead).clamp(self.lo, self.hi)
        close = actions[:, 3] > 0
        near = (self.handle_pos() - self.ee_pos()).norm(dim=1) < c.grasp_radius
        self.grasped = close & (self.grasped | near)
        sim.ctrl[:, self.ctrl_index] = self.q_cmd.to(sim.ctrl.dtype)
        sim.ctrl[:, self.grip_ctrl] = torch.where(close, 0.0, self.stroke).to(sim.ctrl.dtype)
        sim.ctrl[:, self.grasp_ctrl] = self.grasped.to(sim.ctrl.dtype)

    # --- episodes -----------------------------------------------------------------------
    def reset_envs(self, env_ids: torch.Tensor) -> None:
        c, k = self.cfg, len(env_ids)
        u = lambda *shape: 2 * torch.rand(shape, generator=self.torch_rng, device=self.device) - 1  # noqa: E731
        q = (self.default_pose + c.start_noise * u(k, len(self.lo))).clamp(self.lo, self.hi)
        qpos = self.qpos0.expand(k, -1).clone()
        qpos[:, self.actuated_qadr] = q.to(qpos.dtype)
        qpos[:, self.grip_qadr] = self.stroke
        x, y, z = c.cabinet["pos"]
        a = self.free_qadr
        qpos[:, a] = x + c.jitter_m * u(k).to(qpos.dtype)
        qpos[:, a + 1] = y + c.jitter_m * u(k).to(qpos.dtype)
        qpos[:, a + 2] = z
        yaw = c.cabinet["yaw"] + c.jitter_rad * u(k).to(qpos.dtype)
        qpos[:, a + 3 : a + 7] = 0.0
        qpos[:, a + 3], qpos[:, a + 6] = torch.cos(yaw / 2), torch.sin(yaw / 2)
        self.sim.reset(env_ids, qpos=qpos)
        self.q_cmd[env_ids] = q
        self.grasped[env_ids] = False
