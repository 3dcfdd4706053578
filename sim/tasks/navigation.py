"""Point-goal navigation among obstacles for wheeled bases (task id `navigate`).

Scene: the body, `len(OBSTACLES)` box obstacles (four blocks and two wall segments, fixed
sizes, 0.5 m tall) and a flat goal disc, all mocap bodies placed per env and episode, and
a ring of `num_rays` horizontal rangefinders on the base. The ring sits above every robot
geom outside the base body (a rangefinder ignores only its own body's geoms), so it sees
neither the robot nor the floor nor the goal disc.

Episode: the robot starts at the origin with a random yaw; the goal lies `goal_distance`
away in a random direction. Each obstacle is used with probability `obstacle_prob`, on the
start-goal line with probability `on_path_prob` and anywhere around it otherwise; it keeps
`clearance` m beyond the robot's circumradius R from the start and the goal, and 2R +
`clearance` from the other obstacles, so the expanded obstacles are disjoint and the goal is
always reachable. Obstacles that find no place are parked far away.

Action: a body-frame twist, (vx m/s, wz rad/s) for differential drive, (vx, vy m/s, wz
rad/s) for omni bases; `action_scale` m/s and `turn_scale` rad/s per unit of policy output,
then mapped to wheel speeds (diff) or world-frame base velocities (omni) within the actuator
limits. A collision (the robot's footprint rectangle within `collision_margin` of an
obstacle, checked analytically) ends the episode in failure; coming within `success_radius`
of the goal without a collision ends it in success.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.physics.backend import BatchedSim

from . import terms
from .base import ObsTerm, RewardTerm, Task, TaskConfig

# Obstacle half extents (x, y) in m, axis-aligned in the world: four blocks, two walls.
OBSTACLES = ((0.2, 0.2), (0.3, 0.15), (0.15, 0.3), (0.25, 0.25), (0.75, 0.05), (0.05, 0.75))
OBSTACLE_HALF_HEIGHT = 0.25  # m
PARK = 100.0  # m, where unused obstacles wait


@dataclass(kw_only=True)
class NavigateConfig(TaskConfig):
    episode_seconds: float = 12.0
    control_hz: float = 10.0  # 0.1 s: 20 physics steps of 5 ms
    action_scale: float = 0.5  # m/s of linear velocity per unit of policy output
    turn_scale: float = 1.0  # rad/s of yaw rate per unit of policy output
    goal_distance: tuple[float, float] = (1.5, 3.5)  # m from the start
    success_radius: float = 0.3  # m, base centre to goal
    num_rays: int = 16  # rangefinders, evenly spaced over 360 deg, ray 0 straight ahead
    ray_range: float = 3.0  # m, reading for "nothing hit" and largest reading
    obstacle_prob: float = 0.8  # chance that each obstacle is placed in an episode
    on_path_prob: float = 0.5  # chance that a placed obstacle sits on the start-goal line
    clearance: float = 0.3  # m of free space beyond the robot's circumradius (see above)
    collision_margin: float = 0.02  # m, footprint-to-obstacle distance counted as a hit

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self.goal_distance
        if not 0 < lo <= hi:
            raise ValueError(f"goal_distance={self.goal_distance}, expected 0 < low <= high")
        if self.num_rays < 1 or self.ray_range <= 0 or self.success_radius <= 0:
            raise ValueError("num_rays, ray_range and success_radius must be positive")
        if not (0 <= self.obstacle_prob <= 1 and 0 <= self.on_path_prob <= 1):
            raise ValueError("obstacle_prob and on_path_prob must lie in [0, 1]")


def _box_distance(p: np.ndarray, q: np.ndarray, half: np.ndarray) -> float:
    """Distance from point `p` to the axis-aligned box of half extents `half` at `q`; with
    `half` the sum of two boxes' half extents, the gap between boxes centred at p and q."""
    return float(np.hypot(*np.maximum(np.abs(p - q) - half, 0.0)))


class NavigateTask(Task):
    body_classes = ("wheeled",)
    name = "navigate"
    cfg: NavigateConfig
    action_mapping = "body_twist"

    def __init__(self, cfg: NavigateConfig, emb: Embodiment) -> None:
        super().__init__(cfg, emb)
        self.omni = bool(emb.params.get("omni", 0))
        self._measure_body()

    @property
    def action_names(self) -> tuple[str, ...]:
        """Policy outputs: forward (and left) speed, m/s, and yaw rate, rad/s, body frame."""
        return ("vx", "vy", "wz") if self.omni else ("vx", "wz")

    @property
    def num_actions(self) -> int:
        return len(self.action_names)

    def _measure_body(self) -> None:
        """Footprint half extents, circumradius and rangefinder height from the home pose."""
        m = self.emb.compile()
        d = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
        mujoco.mj_forward(m, d)
        base = m.body(self.emb.sensors.base_body).id
        signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
        half_xy, other_top = np.zeros(2), -np.inf
        for g in range(m.ngeom):
            if m.geom_bodyid[g] == 0:
                continue  # the floor
            box = m.geom_aabb[g, :3] + signs * m.geom_aabb[g, 3:]  # corners, geom frame
            pts = d.geom_xpos[g] + box @ d.geom_xmat[g].reshape(3, 3).T - d.xpos[base]
            half_xy = np.maximum(half_xy, np.abs(pts[:, :2]).max(0))
            if m.geom_bodyid[g] != base:
                other_top = max(other_top, pts[:, 2].max())
        self.footprint = torch.tensor(half_xy, dtype=torch.float32)  # (hx, hy) in m
        self.radius = float(np.hypot(*half_xy))  # circumradius of the footprint
        chassis = d.geom_xpos[m.geom("chassis").id, 2] - d.xpos[base, 2]
        self.ring_height = float(max(chassis, other_top + 0.01))  # in the base frame, m

    # --- scene --------------------------------------------------------------------------
    def build_model(self) -> mujoco.MjModel:
        spec = self.emb.spec()
        base = spec.body(self.emb.sensors.base_body)
        for i in range(self.cfg.num_rays):
            a = 2 * math.pi * i / self.cfg.num_rays
            z = np.array([math.cos(a), math.sin(a), 0.0])  # a rangefinder looks along its +z
            mat = np.column_stack([[0.0, 0.0, -1.0], np.cross(z, [0.0, 0.0, -1.0]), z])
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, mat.flatten())
            base.add_site(name=f"ray_{i}", pos=[0, 0, self.ring_height], quat=quat, group=4)
            sensor = spec.add_sensor(
                name=f"range_{i}", type=mujoco.mjtSensor.mjSENS_RANGEFINDER,
                objtype=mujoco.mjtObj.mjOBJ_SITE, objname=f"ray_{i}",
            )  # fmt: skip
            sensor.intprm[0] = 1 << int(mujoco.mjtRayDataField.mjRAYDATA_DIST)
        for k, (hx, hy) in enumerate(OBSTACLES):
            body = spec.worldbody.add_body(
                name=f"obstacle_{k}", mocap=True, pos=[PARK + 5 * k, PARK, OBSTACLE_HALF_HEIGHT]
            )
            body.add_geom(
                type=mujoco.mjtGeom.mjGEOM_BOX, size=[hx, hy, OBSTACLE_HALF_HEIGHT],
                rgba=[0.75, 0.45, 0.2, 1],
            )  # fmt: skip
        goal = spec.worldbody.add_body(name="goal", mocap=True, pos=[0, 0, 0.002])
        goal.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[self.cfg.success_radius, 0.002, 0],
            contype=0, conaffinity=0, rgba=[0.1, 0.9, 0.2, 0.5],
        )  # fmt: skip
        return spec.compile()

    def bind(self, sim: BatchedSim, rng: np.random.Generator) -> None:
        super().bind(sim, rng)
        m, n, dev = sim.model, self.num_envs, self.device
        jnt = {name: m.joint(name).id for name in self.emb.joint_names}
        if self.omni:
            ids = [jnt["base_x"], jnt["base_y"], jnt["base_yaw"]]
            self.pose_q = torch.tensor([int(m.jnt_qposadr[j]) for j in ids], device=dev)
            self.pose_v = torch.tensor([int(m.jnt_dofadr[j]) for j in ids], device=dev)
        else:
            root = next(j for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE)
            self.root_q, self.root_v = int(m.jnt_qposadr[root]), int(m.jnt_dofadr[root])
        self.ctrl_range = torch.tensor(m.actuator_ctrlrange, dtype=torch.float32, device=dev)
        self.footprint = self.footprint.to(dev)  # measured in build_model, on the CPU
        self.ray_adr = int(m.sensor("range_0").adr[0])
        self.mocap_ids = [
            int(m.body_mocapid[m.body(f"obstacle_{k}").id]) for k in range(len(OBSTACLES))
        ]
        self.goal_mocap = int(m.body_mocapid[m.body("goal").id])
        self.obstacle_half = torch.tensor(OBSTACLES, dtype=torch.float32, device=dev)
        self.obstacles = torch.full((n, len(OBSTACLES), 2), PARK, device=dev)
        self.goal = torch.zeros(n, 2, device=dev)
        self.dist = torch.zeros(n, device=dev)
        self.prev_dist = torch.zeros(n, device=dev)
        self.collided = torch.zeros(n, dtype=torch.bool, device=dev)
        self.reached = torch.zeros(n, dtype=torch.bool, device=dev)

    # --- state --------------------------------------------------------------------------
    def base_pose(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Base position (N, 2) in m and yaw (N,) in rad, world frame."""
        q = self.sim.qpos
        if self.omni:
            return q[:, self.pose_q[:2]].float(), q[:, self.pose_q[2]].float()
        w, x, y, z = q[:, self.root_q + 3 : self.root_q + 7].float().unbind(1)
        yaw = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        return q[:, self.root_q : self.root_q + 2].float(), yaw

    def goal_body(self) -> torch.Tensor:
        """Goal position (N, 2) in the base's yaw frame, m."""
        pos, yaw = self.base_pose()
        return terms.to_yaw_frame(self.goal - pos, yaw)

    def base_twist(self) -> torch.Tensor:
        """(vx, vy) in m/s in the base's yaw frame and yaw rate in rad/s, (N, 3)."""
        v = self.sim.qvel
        if self.omni:
            vw, wz = v[:, self.pose_v[:2]].float(), v[:, self.pose_v[2]].float()
        else:  # free joint: world linear velocity, body-frame angular velocity
            vw, wz = v[:, self.root_v : self.root_v + 2].float(), v[:, self.root_v + 5].float()
        _, yaw = self.base_pose()
        return torch.cat([terms.to_yaw_frame(vw, yaw), wz[:, None]], 1)

    def ranges(self) -> torch.Tensor:
        r = self.sim.sensordata[:, self.ray_adr : self.ray_adr + self.cfg.num_rays].float()
        return terms.clipped_ranges(r, self.cfg.ray_range)

    def collisions(self) -> torch.Tensor:
        """(N,) bool: the footprint rectangle overlaps an obstacle grown by the margin."""
        pos, yaw = self.base_pose()
        cos, sin = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
        c, s = cos.abs(), sin.abs()
        hx, hy = self.footprint
        half = self.obstacle_half + self.cfg.collision_margin
        ax, ay = half[:, 0], half[:, 1]
        d = self.obstacles - pos[:, None, :]  # (N, K, 2)
        dx, dy = d[..., 0], d[..., 1]
        overlap = (  # separating-axis test on the world axes and the robot's axes
            (dx.abs() <= ax + hx * c + hy * s)
            & (dy.abs() <= ay + hx * s + hy * c)
            & ((cos * dx + sin * dy).abs() <= hx + ax * c + ay * s)
            & ((cos * dy - sin * dx).abs() <= hy + ax * s + ay * c)
        )
        return overlap.any(1)

    # --- actions ------------------------------------------------------------------------
    def apply_actions(self, actions: torch.Tensor) -> None:
        """Body twist vx = action_scale * a[0] (m/s forward), omni only vy = action_scale *
        a[1] (m/s left), wz = turn_scale * a[-1] (rad/s, CCW). Diff drive: wheel speeds
        ((vx - wz * track_width / 2), (vx + wz * track_width / 2)) / wheel_radius (left,
        right); omni: (vx, vy) rotated by the base yaw to base_x, base_y speeds, wz to
        base_yaw. Clipped to the actuators' ctrlrange."""
        lin, turn = self.cfg.action_scale, self.cfg.turn_scale
        if self.omni:
            _, yaw = self.base_pose()
            c, s = torch.cos(yaw), torch.sin(yaw)
            vx, vy, w = lin * actions[:, 0], lin * actions[:, 1], turn * actions[:, 2]
            ctrl = torch.stack([c * vx - s * vy, s * vx + c * vy, w], 1)
        else:
            r, half_track = self.emb.params["wheel_radius"], self.emb.params["track_width"] / 2
            v, w = lin * actions[:, 0], turn * actions[:, 1]
            ctrl = torch.stack([(v - w * half_track) / r, (v + w * half_track) / r], 1)
        ctrl = ctrl.clamp(self.ctrl_range[:, 0], self.ctrl_range[:, 1])
        self.sim.ctrl[:] = ctrl.to(self.sim.ctrl.dtype)

    # --- terms --------------------------------------------------------------------------
    def obs_terms(self) -> list[ObsTerm]:
        def bearing(t: NavigateTask) -> torch.Tensor:
            return terms.goal_direction(t.goal_body())

        return [
            ObsTerm("goal_distance", lambda t: terms.goal_distance(t.goal_body()), "m",
                    "base_yaw", "distance from the base to the goal", 0.02),
            ObsTerm("goal_direction", bearing, "1", "base_yaw",
                    "unit vector (cos, sin of the bearing) towards the goal", 0.01),
            ObsTerm("base_lin_vel", lambda t: t.base_twist()[:, :2], "m/s", "base_yaw",
                    "base linear velocity (forward, left)", 0.05),
            ObsTerm("base_ang_vel", lambda t: t.base_twist()[:, 2:], "rad/s", "base_yaw",
                    "base yaw rate", 0.05),
            ObsTerm("ranges", NavigateTask.ranges, "m", "base_yaw",
                    f"{self.cfg.num_rays} rangefinder distances, ray i at 360*i/"
                    f"{self.cfg.num_rays} deg (CCW from forward); no hit reads ray_range", 0.02),
            ObsTerm("last_action", Task.last_action, "1", "action",
                    "previous policy output (before scaling): (vx, wz) or (vx, vy, wz)"),
        ]  # fmt: skip

    def reward_terms(self) -> list[RewardTerm]:
        hz = self.cfg.control_hz  # one-off terms are returned per second of their step
        return [
            RewardTerm("progress", lambda t: (t.prev_dist - t.dist) * hz, 1.0),
            RewardTerm("goal_reached", lambda t: t.success().float() * hz, 5.0),
            RewardTerm("collision", lambda t: t.collided.float() * hz, -5.0),
            RewardTerm("action_rate", Task.action_rate, -0.05),
            RewardTerm("time", lambda t: torch.ones(t.num_envs, device=t.device), -0.1),
        ]

    def post_step(self) -> None:
        self.prev_dist = self.dist
        self.dist = self.goal_body().norm(dim=1)
        self.collided = self.collided | self.collisions()
        self.reached = self.dist < self.cfg.success_radius

    def terminated(self) -> torch.Tensor:
        return self.collided | self.reached

    def success(self) -> torch.Tensor:
        return self.reached & ~self.collided

    def metrics(self) -> dict[str, torch.Tensor]:
        return {"goal_distance_m": self.dist, "collided": self.collided.float()}

    # --- episodes -----------------------------------------------------------------------
    def _layout(self) -> tuple[float, np.ndarray, np.ndarray]:
        """One episode: start yaw, goal (2,), obstacle centres (K, 2)."""
        rng, cfg, r = self.rng, self.cfg, self.radius
        heading = rng.uniform(-math.pi, math.pi)
        goal = rng.uniform(*cfg.goal_distance) * np.array([math.cos(heading), math.sin(heading)])
        normal = np.array([-goal[1], goal[0]]) / np.linalg.norm(goal)
        centres = np.array([[PARK + 5 * k, PARK] for k in range(len(OBSTACLES))])
        placed: list[int] = []
        for k, half in enumerate(np.array(OBSTACLES)):
            if rng.random() >= cfg.obstacle_prob:
                continue
            for _ in range(20):
                on_path = rng.random() < cfg.on_path_prob
                t = rng.uniform(0.25, 0.75) if on_path else rng.uniform(-0.3, 1.3)
                p = t * goal + normal * (rng.uniform(-0.3, 0.3) if on_path else rng.uniform(-2, 2))
                ok = min(_box_distance(p, x, half) for x in (np.zeros(2), goal)) > r + cfg.clearance
                ok = ok and all(
                    _box_distance(p, centres[j], half + OBSTACLES[j]) > 2 * r + cfg.clearance
                    for j in placed
                )
                if ok:
                    centres[k] = p
                    placed.append(k)
                    break
        return rng.uniform(-math.pi, math.pi), goal, centres

    def reset_envs(self, env_ids: torch.Tensor) -> None:
        layouts = [self._layout() for _ in range(len(env_ids))]
        self.place(env_ids, *(np.array(x) for x in zip(*layouts, strict=True)))

    def place(
        self, env_ids: torch.Tensor, yaw: np.ndarray, goal: np.ndarray, centres: np.ndarray
    ) -> None:
        """Start `env_ids` at the origin with `yaw` (n,), the goal at `goal` (n, 2) and the
        obstacles at `centres` (n, K, 2) (world frame, m; PARK or beyond: out of the way)."""
        m, n = self.sim.model, len(env_ids)
        qpos = np.tile(m.key_qpos[m.key("home").id], (n, 1))
        if self.omni:
            qpos[:, int(self.pose_q[2])] = yaw
        else:
            qpos[:, self.root_q + 3] = np.cos(yaw / 2)
            qpos[:, self.root_q + 6] = np.sin(yaw / 2)
        mocap = np.zeros((n, m.nmocap, 3))
        mocap[:, self.mocap_ids, :2] = centres
        mocap[:, self.mocap_ids, 2] = OBSTACLE_HALF_HEIGHT
        mocap[:, self.goal_mocap, :2] = goal
        mocap[:, self.goal_mocap, 2] = 0.002
        self.sim.reset(env_ids, qpos=qpos, mocap_pos=mocap)
        self.goal[env_ids] = torch.as_tensor(goal, dtype=torch.float32, device=self.device)
        self.obstacles[env_ids] = torch.as_tensor(centres, dtype=torch.float32, device=self.device)
        self.dist[env_ids] = self.goal_body()[env_ids].norm(dim=1)
        self.prev_dist[env_ids] = self.dist[env_ids]
        self.collided[env_ids] = False
        self.reached[env_ids] = False
