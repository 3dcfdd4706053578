"""Velocity-command tracking for legged bodies (task id `velocity`: quadrupeds, humanoids).

Each env follows a command (vx, vy, wz): forward and lateral base velocity (m/s, base
frame) and yaw rate (rad/s), drawn per episode from the config's ranges (a fraction of envs
gets a standing command) and redrawn every `resample_s` seconds. Setting
`task.fixed_commands` ((N, 3)) makes every reset use those rows instead (evaluation).

Everything comes from MuJoCo sensors added in `build_model`: a velocimeter at the IMU site
(base-frame linear velocity), the IMU gyro and orientation, a framepos of the base body and
of every foot site ("*_foot": on flat ground, contact = the foot within `contact_height`
of its height in the home pose), actuator forces, and contact sensors on the base and on
every body not on a leg that has a collision geom (`add_fall_touch`: a trunk; a humanoid's
pelvis, torso, head and arms), each counting its contacts with the world body's geoms (the
floor, the terrain). Episodes end on a fall: base tilted beyond `max_tilt`, base below
`min_height` x its home height, or any of those bodies touching the ground. The robot
touching itself (a vendor quadruped's thigh against its trunk) is not a fall; until
2026-12-04 touch sites counted any contact, and on the generated bodies both rules end the
same episodes at the same steps (checked on a humanoid and a quadruped, CPU and Warp).

A gait clock (phase advancing by 1 every `gait_period` s, random at reset) is observed as
sin/cos; the `gait` reward pays for each foot whose contact follows it: half the period in
stance, half in swing, left and right in antiphase, a quadruped's diagonal pairs together
(a trot); all feet in stance under a standing command. It makes the policy step on purpose
early in training, which is what lets tracking be learnt in minutes on a CPU.

Rough terrain (`terrain="rough"`, opt-in; "flat", the default, is unchanged): a height
field of `terrain_levels` rows of tiles whose bumps rise from none (row 0) to
`terrain_max_height` m (`xembody.sim.tasks.terrain`). Each env has a level (a row),
starting at 0, and spawns on a random tile of it. After an episode the level rises by one
when the env did not fall and walked at least half the distance commanded (speed x time,
at least 1 m) along the command, and falls by one when it fell or walked less than a
quarter of it; past the top level an env goes to a random one. The mean level is logged as
`/curriculum/terrain_level`. On rough ground a foot's contact is a touch sensor around its
collision geom (over 1 N), and the base height (reward, critic, fall test) is measured
from the mean terrain height under the feet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch

from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.physics.backend import BatchedSim

from . import terms
from .base import ObsTerm, RandomizationCfg, RewardTerm, Task, TaskConfig
from .math import quat_rotate
from .terrain import (
    Terrain,
    TerrainCurriculum,
    add_foot_touch,
    add_terrain,
    generate_terrain,
)

_SENS = mujoco.mjtSensor
TOUCH_N = 1.0  # N of normal force on a foot's touch site that counts as contact (rough)


@dataclass(kw_only=True)
class VelocityConfig(TaskConfig):
    episode_seconds: float = 10.0
    action_scale: float = 0.25
    vx: tuple[float, float] = (-0.5, 1.0)  # m/s, forward
    vy: tuple[float, float] = (-0.3, 0.3)  # m/s, leftward
    wz: tuple[float, float] = (-1.0, 1.0)  # rad/s, yaw rate (counter-clockwise)
    standing_fraction: float = 0.1  # share of commands that are all zero
    resample_s: float = 5.0  # s between command draws within an episode (0: once)
    tracking_sigma: float = 0.15  # (m/s)^2 and (rad/s)^2, width of the tracking rewards
    air_time_target: float = 0.2  # s, swing time above which feet_air_time pays
    contact_height: float = 0.015  # m above the foot's home height that still counts as contact
    max_tilt: float = 1.0  # rad between base z and world z before the episode ends
    min_height: float = 0.5  # fraction of the home base height before the episode ends
    init_joint_noise: float = 0.1  # rad, uniform noise on the initial joint angles
    gait_period: float = 0.35  # s, stride of the gait clock (0: no clock, no gait reward)
    observe_lin_vel: bool = False  # add the base velocity (needs an estimator on a robot)
    terrain: str = "flat"  # "flat", or "rough": tiles of rising roughness, a level curriculum
    terrain_levels: int = 10  # rows of tiles (difficulty levels), rough only
    terrain_max_height: float = 0.05  # m, largest bump on the top level, rough only
    terrain_seed: int = 0  # numpy seed of the rough terrain
    randomization: RandomizationCfg = field(
        default_factory=lambda: RandomizationCfg(push_interval_s=8.0)  # kicks of <= 0.5 m/s
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vx", "vy", "wz"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"{name}={(lo, hi)}, expected low <= high")
        if not 0 <= self.standing_fraction <= 1:
            raise ValueError(f"standing_fraction={self.standing_fraction}, expected in [0, 1]")
        if min(self.resample_s, self.init_joint_noise, self.gait_period) < 0:
            raise ValueError("resample_s, init_joint_noise and gait_period must be >= 0")
        if self.terrain not in ("flat", "rough"):
            raise ValueError(f"terrain={self.terrain!r}, expected 'flat' or 'rough'")
        if not isinstance(self.terrain_levels, int) or self.terrain_levels < 2:
            raise ValueError(f"terrain_levels={self.terrain_levels!r}, expected an integer >= 2")
        if not 0 < self.terrain_max_height <= 1:
            raise ValueError(
                f"terrain_max_height={self.terrain_max_height!r}, expected in (0, 1] m"
            )


class VelocityTask(Task):
    body_classes = ("quadruped", "humanoid")
    name = "velocity"
    cfg: VelocityConfig

    def __init__(self, cfg: VelocityConfig, emb: Embodiment) -> None:
        super().__init__(cfg, emb)
        if not emb.floating_base or not emb.sensors.imu_site or not emb.sensors.base_body:
            raise ValueError(f"task 'velocity' needs a floating base with an IMU: {emb.name!r}")
        self.fixed_commands: torch.Tensor | None = None  # (N, 3): used at every reset
        self.terrain: Terrain | None = None  # rough only, set by build_model
        self.curriculum: TerrainCurriculum | None = None  # rough only, set by bind

    def build_model(self) -> mujoco.MjModel:
        spec = self.emb.spec()
        site, body = mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtObj.mjOBJ_BODY
        imu, base = self.emb.sensors.imu_site, self.emb.sensors.base_body
        spec.add_sensor(name="base_vel", type=_SENS.mjSENS_VELOCIMETER, objtype=site, objname=imu)
        spec.add_sensor(name="base_pos", type=_SENS.mjSENS_FRAMEPOS, objtype=body, objname=base)
        self.feet = tuple(s.name for s in spec.sites if s.name.endswith("_foot"))
        if not self.feet:
            raise ValueError(f"task 'velocity': body {self.emb.name!r} has no '*_foot' sites")
        for foot in self.feet:
            spec.add_sensor(
                name=f"{foot}_pos", type=_SENS.mjSENS_FRAMEPOS, objtype=site, objname=foot
            )
            spec.add_sensor(
                name=f"{foot}_vel", type=_SENS.mjSENS_FRAMELINVEL, objtype=site, objname=foot
            )
        for j in self.joint_names:
            spec.add_sensor(
                name=f"{j}_force",
                type=_SENS.mjSENS_ACTUATORFRC,
                objtype=mujoco.mjtObj.mjOBJ_ACTUATOR,
                objname=j,
            )
        self.touch = add_fall_touch(spec, self.emb.compile(), base, self.feet)
        if self.cfg.terrain == "rough":
            c = self.cfg
            self.terrain = generate_terrain(c.terrain_levels, c.terrain_max_height, c.terrain_seed)
            add_terrain(spec, self.terrain)
            add_foot_touch(spec, self.emb.compile(), self.feet)
        return spec.compile()

    def bind(self, sim: BatchedSim, rng: np.random.Generator) -> None:
        super().bind(sim, rng)
        m, n, dev = sim.model, self.num_envs, self.device
        key = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_KEY, "home")
        d = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, d, key) if key >= 0 else mujoco.mj_resetData(m, d)
        mujoco.mj_kinematics(m, d)
        self.home_qpos = torch.tensor(d.qpos, dtype=sim.qpos.dtype, device=dev)
        self.home_height = float(d.qpos[2])
        feet = d.site_xpos[[m.site(f).id for f in self.feet]] - d.qpos[:3]  # base frame
        self.foot_contact_z = torch.tensor(
            feet[:, 2] + self.home_height + self.cfg.contact_height, dtype=torch.float32, device=dev
        )
        # Gait clock offsets: left and right alternate; a quadruped's diagonals pair (trot).
        odd = (feet[:, 1] < 0) ^ ((feet[:, 0] < 0) & (len(self.feet) > 2))
        self.foot_offset = torch.tensor(0.5 * odd, dtype=torch.float32, device=dev)
        jid = [m.joint(j).id for j in self.joint_names]
        lo, hi = (
            torch.tensor(m.jnt_range[jid, k], dtype=torch.float32, device=dev) for k in (0, 1)
        )
        mid, half = (hi + lo) / 2, (hi - lo) / 2
        self.soft_lo, self.soft_hi = mid - 0.9 * half, mid + 0.9 * half
        self.joint_lo, self.joint_hi = lo.to(sim.qpos.dtype), hi.to(sim.qpos.dtype)
        self.effort = torch.tensor(
            [m.actuator_forcerange[m.actuator(j).id, 1] for j in self.joint_names],
            dtype=torch.float32,
            device=dev,
        )
        # sensordata columns read every step, gathered once instead of one slice per name
        col = lambda name, k: int(m.sensor(name).adr[0]) + k  # noqa: E731
        self._foot_z_cols = torch.tensor([col(f"{f}_pos", 2) for f in self.feet], device=dev)
        self._foot_vel_cols = torch.tensor(
            [[col(f"{f}_vel", k) for k in (0, 1)] for f in self.feet], device=dev
        )
        self._force_cols = torch.tensor(
            [col(f"{j}_force", 0) for j in self.joint_names], device=dev
        )
        self._touch_cols = torch.tensor(
            [col(t, 0) for t in self.touch], dtype=torch.long, device=dev
        )
        if self.terrain is not None:
            footprint = float(np.linalg.norm(feet[:, :2], axis=1).max()) + 0.05
            self.curriculum = TerrainCurriculum(self.terrain, n, dev, footprint)
            self._foot_xy_cols = torch.tensor(
                [[col(f"{f}_pos", k) for k in (0, 1)] for f in self.feet], device=dev
            )
            self._foot_touch_cols = torch.tensor(
                [col(f"{f}_touch", 0) for f in self.feet], device=dev
            )
        c = self.cfg
        self._command_lo = torch.tensor([c.vx[0], c.vy[0], c.wz[0]], device=dev)
        self._command_hi = torch.tensor([c.vx[1], c.vy[1], c.wz[1]], device=dev)
        self.commands = torch.zeros(n, 3, device=dev)
        self.command_timer = torch.zeros(n, device=dev)
        self.air_time = torch.zeros(n, len(self.feet), device=dev)
        self.last_contact = torch.zeros(n, len(self.feet), dtype=torch.bool, device=dev)
        self.air_reward = torch.zeros(n, device=dev)
        self.phase = torch.zeros(n, device=dev)
        self.contact = torch.ones(n, len(self.feet), dtype=torch.bool, device=dev)
        self.last_joint_vel = torch.zeros(n, self.num_actions, device=dev)
        self.joint_acc = torch.zeros(n, self.num_actions, device=dev)

    # --- measured quantities --------------------------------------------------------------
    def base_ang_vel(self) -> torch.Tensor:
        return self.sensor("imu_gyro")

    def base_lin_vel(self) -> torch.Tensor:
        return self.sensor("base_vel")

    def projected_gravity(self) -> torch.Tensor:
        return terms.projected_gravity(self.sensor("imu_quat"))

    def command(self) -> torch.Tensor:
        return self.commands

    def foot_contact(self) -> torch.Tensor:
        if self.curriculum is not None:  # rough: the feet's touch sensors
            return self.sim.sensordata[:, self._foot_touch_cols] > TOUCH_N
        z = self.sim.sensordata[:, self._foot_z_cols].float()
        return z < self.foot_contact_z

    def base_z(self) -> torch.Tensor:
        """(N,) base height (m) above the ground: z on flat ground; on rough ground minus the
        mean terrain height under the feet."""
        z = self.sensor("base_pos")[:, 2]
        if self.curriculum is None:
            return z
        feet_xy = self.sim.sensordata[:, self._foot_xy_cols].float()  # (N, feet, 2)
        return z - self.curriculum.ground(feet_xy).mean(1)

    def moving(self) -> torch.Tensor:
        return self.commands.norm(dim=1) > 0.1

    def clock(self) -> torch.Tensor:
        return terms.gait_clock(self.phase)

    def gait_match(self) -> torch.Tensor:
        """Share of feet whose contact follows the clock (half stance, half swing; all
        feet in stance under a standing command)."""
        stance = (self.phase[:, None] + self.foot_offset) % 1.0 < 0.5
        stance |= ~self.moving()[:, None]
        return (self.contact == stance).float().mean(1)

    def foot_slip(self) -> torch.Tensor:
        """Sum over feet in contact of the foot's horizontal speed squared ((m/s)^2)."""
        v = self.sim.sensordata[:, self._foot_vel_cols].float()  # (N, feet, 2), world frame
        return (v.square().sum(2) * self.contact).sum(1)

    def stand_still(self) -> torch.Tensor:
        """Joint distance from the default pose (rad) under a standing command."""
        return self.joint_pos_rel().abs().sum(1) * ~self.moving()

    def contact_obs(self) -> torch.Tensor:
        return self.contact.float()

    def base_height(self) -> torch.Tensor:
        return (self.base_z() - self.home_height)[:, None]

    def joint_force_ratio(self) -> torch.Tensor:
        f = self.sim.sensordata[:, self._force_cols].float()
        return f / self.effort

    def lin_vel_error(self) -> torch.Tensor:
        return (self.commands[:, :2] - self.base_lin_vel()[:, :2]).norm(dim=1)

    def yaw_rate_error(self) -> torch.Tensor:
        return (self.commands[:, 2] - self.base_ang_vel()[:, 2]).abs()

    # --- terms --------------------------------------------------------------------------
    def obs_terms(self) -> list[ObsTerm]:
        T, V = Task, VelocityTask
        lin_vel = ObsTerm("base_lin_vel", V.base_lin_vel, "m/s", "body", "velocimeter at IMU", 0.1)
        clock = ObsTerm("gait_clock", V.clock, "1", "task", "sin, cos of 2 pi gait phase")
        return [lin_vel] * self.cfg.observe_lin_vel + [
            ObsTerm("base_ang_vel", V.base_ang_vel, "rad/s", "body", "IMU gyro", 0.2),
            ObsTerm(
                "projected_gravity",
                V.projected_gravity,
                "1",
                "body",
                "unit gravity direction (0, 0, -1 upright)",
                0.05,
            ),
            ObsTerm(
                "velocity_command",
                V.command,
                "m/s, m/s, rad/s",
                "body",
                "commanded forward, lateral velocity and yaw rate",
            ),
            *[clock] * (self.cfg.gait_period > 0),
            ObsTerm("joint_pos", T.joint_pos_rel, "rad", "joint", "angles minus default", 0.01),
            ObsTerm("joint_vel", T.joint_vel, "rad/s", "joint", "joint velocities", 0.5),
            ObsTerm("last_action", T.last_action, "1", "action", "previous policy output"),
        ]

    def critic_terms(self) -> list[ObsTerm]:
        V = VelocityTask
        return [
            ObsTerm("base_lin_vel", V.base_lin_vel, "m/s", "body", "velocimeter at IMU"),
            ObsTerm("base_height", V.base_height, "m", "world", "base height minus home"),
            ObsTerm("foot_contact", V.contact_obs, "1", "foot", "1: foot on the ground"),
        ]

    def reward_terms(self) -> list[RewardTerm]:
        V, s = VelocityTask, self.cfg.tracking_sigma
        return [
            RewardTerm("track_lin_vel", lambda t: torch.exp(-(t.lin_vel_error() ** 2) / s), 2.0),
            RewardTerm("track_yaw_rate", lambda t: torch.exp(-(t.yaw_rate_error() ** 2) / s), 1.0),
            RewardTerm("lin_vel_z", V.world_vz_sq, -2.0),
            RewardTerm("ang_vel_xy", lambda t: t.base_ang_vel()[:, :2].square().sum(1), -0.05),
            RewardTerm("orientation", lambda t: t.projected_gravity()[:, :2].square().sum(1), -1.0),
            RewardTerm("base_height", V.height_error_sq, -10.0),
            RewardTerm("action_rate", Task.action_rate, -0.01),
            RewardTerm("joint_limits", V.joint_limit_excess, -5.0),
            RewardTerm("torques", lambda t: t.joint_force_ratio().square().sum(1), -0.05),
            RewardTerm("joint_acc", lambda t: t.joint_acc.square().sum(1), 0.0),
            RewardTerm("feet_air_time", lambda t: t.air_reward, 1.0),
            RewardTerm("feet_slip", V.foot_slip, -0.1),
            RewardTerm("stand_still", V.stand_still, -0.5),
            RewardTerm("termination", lambda t: t.terminated().float(), -100.0),
        ] + [RewardTerm("gait", V.gait_match, 1.0)] * (self.cfg.gait_period > 0)

    def world_vz_sq(self) -> torch.Tensor:
        v = quat_rotate(self.sensor("imu_quat"), self.base_lin_vel())
        return v[:, 2].square()

    def height_error_sq(self) -> torch.Tensor:
        return (self.base_z() - self.home_height).square()

    def joint_limit_excess(self) -> torch.Tensor:
        q = self.joint_pos_rel() + self.default_pose
        return ((q - self.soft_hi).clamp_min(0) + (self.soft_lo - q).clamp_min(0)).sum(1)

    def terminated(self) -> torch.Tensor:
        tilted = self.projected_gravity()[:, 2] > -math.cos(self.cfg.max_tilt)
        low = self.base_z() < self.cfg.min_height * self.home_height
        touched = (self.sim.sensordata[:, self._touch_cols] > 0).any(1)
        return tilted | low | touched

    def metrics(self) -> dict[str, torch.Tensor]:
        return {"lin_vel_error": self.lin_vel_error(), "yaw_rate_error": self.yaw_rate_error()}

    def episode_log(self) -> dict[str, torch.Tensor]:
        if self.curriculum is None:
            return {}
        return {"/curriculum/terrain_level": self.curriculum.level.float().mean()}

    # --- per step and per episode -------------------------------------------------------
    def post_step(self) -> None:
        dt = 1.0 / self.cfg.control_hz
        if self.cfg.gait_period > 0:
            self.phase = (self.phase + dt / self.cfg.gait_period) % 1.0
        self.contact = contact = self.foot_contact()
        touched = contact | self.last_contact  # filtered: one noisy step does not count
        first = (self.air_time > 0) & touched
        self.air_time += dt
        swing = ((self.air_time - self.cfg.air_time_target) * first).sum(1)
        self.air_reward = swing * self.moving()
        self.air_time *= ~touched
        self.last_contact = contact
        qd = self.joint_vel()
        self.joint_acc = (qd - self.last_joint_vel) / dt
        self.last_joint_vel = qd
        if self.curriculum is not None:  # the command of the step just taken
            self.curriculum.track(self.commands[:, :2], self.base_lin_vel()[:, :2], dt)
        if self.cfg.resample_s > 0:  # a mask, not an index list: no host sync
            self.command_timer -= dt
            due = self.command_timer <= 0
            self.commands = torch.where(
                due[:, None], self._draw_commands(self.num_envs), self.commands
            )
            self.command_timer = torch.where(due, self.cfg.resample_s, self.command_timer)

    def _draw_commands(self, k: int) -> torch.Tensor:
        """(k, 3) commands from the config's ranges, a standing_fraction of them zero."""
        u = torch.rand(k, 3, generator=self.torch_rng, device=self.device)
        cmd = self._command_lo + (self._command_hi - self._command_lo) * u
        standing = torch.rand(k, generator=self.torch_rng, device=self.device)
        return cmd * (standing >= self.cfg.standing_fraction)[:, None]

    def reset_envs(self, env_ids: torch.Tensor) -> None:
        k, noise, adr = len(env_ids), self.cfg.init_joint_noise, self.actuated_qadr
        qpos = self.home_qpos.expand(k, -1).clone()
        u = torch.rand(k, len(adr), generator=self.torch_rng, device=self.device)
        q = qpos[:, adr] + noise * (2 * u.to(qpos.dtype) - 1)
        qpos[:, adr] = torch.clamp(q, self.joint_lo, self.joint_hi)
        if self.curriculum is not None:  # the ended episodes' state is still in the sim
            fell = (self.terminated() | self.sim.diverged.to(self.device))[env_ids]
            spawn = self.curriculum.reset(env_ids, fell, self.torch_rng).to(qpos.dtype)
            qpos[:, :2] = spawn[:, :2]
            qpos[:, 2] = self.home_height + spawn[:, 2]
        self.sim.reset(env_ids, qpos=qpos)
        if self.fixed_commands is not None:
            self.commands[env_ids] = self.fixed_commands.to(self.device)[env_ids].float()
            self.command_timer[env_ids] = float("inf")
        else:
            self.commands[env_ids] = self._draw_commands(k)
            self.command_timer[env_ids] = self.cfg.resample_s
        self.air_time[env_ids] = 0.0
        self.last_contact[env_ids] = True
        self.air_reward[env_ids] = 0.0
        self.contact[env_ids] = True
        self.last_joint_vel[env_ids] = 0.0
        self.joint_acc[env_ids] = 0.0
        self.phase[env_ids] = torch.rand(k, generator=self.torch_rng, device=self.device)


def add_fall_touch(
    spec: mujoco.MjSpec, body: mujoco.MjModel, base: str, feet: tuple[str, ...]
) -> list[str]:
    """Contact sensors whose reading ends an episode, one per body that is not on a leg
    and has a collision geom (a quadruped's trunk; a humanoid's pelvis, torso, head and
    arms): the number of its contacts with the world body's geoms (the floor, the terrain).
    Leg bodies, those between the base and a foot site, may touch anything; a fall body
    touching the robot itself (a thigh against the trunk: MuJoCo filters parent-child
    contacts only) is not a fall. Returns the sensor names."""
    m = body
    b_base = m.body(base).id
    legs: set[int] = set()
    for foot in feet:
        b = int(m.site(foot).bodyid[0])
        while b not in (b_base, 0):
            legs.add(b)
            b = int(m.body_parentid[b])
    subtree = {b_base}
    for b in range(b_base + 1, m.nbody):  # a child's id is always above its parent's
        if int(m.body_parentid[b]) in subtree:
            subtree.add(b)
    colliding = {
        int(m.geom_bodyid[g]) for g in range(m.ngeom) if m.geom_contype[g] or m.geom_conaffinity[g]
    }
    names: list[str] = []
    for b in sorted((subtree - legs) & colliding):
        name = "base_fall" if b == b_base else f"{m.body(b).name}_fall"
        spec.add_sensor(
            name=name, type=_SENS.mjSENS_CONTACT, objtype=mujoco.mjtObj.mjOBJ_BODY,
            objname=m.body(b).name, reftype=mujoco.mjtObj.mjOBJ_BODY, refname="world",
            intprm=[1, 0, 1],  # data="found", reduce none, one slot: the contact count
        )  # fmt: skip
        names.append(name)
    return names
