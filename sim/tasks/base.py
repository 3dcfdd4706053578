"""What a task is: a scene built around one body, observation and reward terms, commands,
terminations and per-episode randomisation. The vector env (`xembody.sim.env`) runs it.

A task never touches a physics backend beyond the `BatchedSim` contract. Its tensors live
on the sim's device (`self.device`, set by `bind`): allocate with `device=self.device`
and draw per-step/per-reset randomness from `self.torch_rng` (a generator on that device).
Its terms are plain methods returning `(num_envs, k)` (observations) or `(num_envs,)`
(rewards) tensors;
their names, units and frames are declared in `ObsTerm`s, which is what the docs table
(docs/TASKS.md), the exported policy's sidecar and the ROS 2 side read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch

from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.physics.backend import BatchedSim


@dataclass(kw_only=True)
class RandomizationCfg:
    """Per-episode domain randomisation. Scales multiply the nominal model's values."""

    friction: tuple[float, float] = (0.7, 1.3)  # sliding friction scale, every geom
    mass: tuple[float, float] = (0.9, 1.1)  # body mass scale (inertia follows)
    motor_strength: tuple[float, float] = (0.9, 1.1)  # actuator gain scale
    obs_noise: float = 1.0  # scale on each observation term's declared noise std (0: off)
    push_interval_s: float = 0.0  # mean seconds between pushes (0: no pushes)
    push_velocity: float = 0.5  # m/s, largest horizontal velocity kick of the base
    action_latency: tuple[int, int] = (0, 0)  # control steps of delay, drawn per episode

    def __post_init__(self) -> None:
        for name in ("friction", "mass", "motor_strength", "action_latency"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"randomization.{name}={(lo, hi)}, expected 0 <= low <= high")
        if not all(isinstance(v, int) for v in self.action_latency):
            raise ValueError(
                f"randomization.action_latency={self.action_latency}, expected whole control "
                "periods (LO, HI)"
            )
        if self.obs_noise < 0 or self.push_interval_s < 0 or self.push_velocity < 0:
            raise ValueError(
                "randomization: obs_noise, push_interval_s, push_velocity must be >= 0"
            )

    @classmethod
    def off(cls) -> RandomizationCfg:
        return cls(friction=(1, 1), mass=(1, 1), motor_strength=(1, 1), obs_noise=0.0)


@dataclass(kw_only=True)
class TaskConfig:
    episode_seconds: float = 5.0
    control_hz: float = 50.0
    action_scale: float = 0.5  # rad (or m, or m/s) per unit of policy output
    action_clip: float = 3.0  # policy outputs are clipped to +-action_clip first
    randomization: RandomizationCfg = field(default_factory=RandomizationCfg)
    rewards: dict[str, float] = field(default_factory=dict)  # term -> weight (0: off)

    def __post_init__(self) -> None:
        for name in ("episode_seconds", "control_hz", "action_scale", "action_clip"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")


@dataclass(frozen=True)
class ObsTerm:
    """One observation term: `fn(task) -> (N, size)`; noise is a std in the term's units."""

    name: str
    fn: Callable[[Task], torch.Tensor]
    units: str
    frame: str
    doc: str
    noise: float = 0.0


@dataclass(frozen=True)
class RewardTerm:
    """One reward term: `fn(task) -> (N,)`, multiplied by `weight` and the control period."""

    name: str
    fn: Callable[[Task], torch.Tensor]
    weight: float


class Task:
    """Base class. Subclasses set `body_classes`, build their scene in `build_model`, and
    define `obs_terms`, `reward_terms`, `terminated`, `success` and `reset_envs`."""

    body_classes: tuple[str, ...] = ()
    name: str = "task"

    def __init__(self, cfg: TaskConfig, emb: Embodiment):
        if emb.body_class not in self.body_classes:
            raise ValueError(
                f"task {self.name!r} needs a body of class {' or '.join(self.body_classes)}, "
                f"got {emb.name!r} of class {emb.body_class!r}"
            )
        self.cfg = cfg
        self.emb = emb
        self.sim: BatchedSim | None = None
        self.num_envs = 0

    # --- built once ---------------------------------------------------------------------
    def build_model(self) -> mujoco.MjModel:
        """The body plus whatever the task adds (targets, obstacles, sensors)."""
        return self.emb.compile()

    def bind(self, sim: BatchedSim, rng: np.random.Generator) -> None:
        """Called by the env once the physics exists; allocate per-env task state here."""
        self.sim = sim
        self.num_envs = sim.num_envs
        self.device = dev = sim.device
        self.rng = rng  # host-side samplers only (rejection sampling with MuJoCo FK)
        self.torch_rng = torch.Generator(dev).manual_seed(int(rng.integers(2**31)))
        m = sim.model
        names = self.joint_names
        self.actuated_qadr = torch.tensor([m.jnt_qposadr[m.joint(n).id] for n in names], device=dev)
        self.actuated_dadr = torch.tensor([m.jnt_dofadr[m.joint(n).id] for n in names], device=dev)
        # actuator i drives emb.joints[i]: the actuators of the policy's joints, in its order
        self.ctrl_index = torch.tensor([self.emb.joint_names.index(n) for n in names], device=dev)
        by_name = {j.name: j for j in self.emb.joints}
        self.default_pose = torch.tensor(
            [by_name[n].default for n in names], dtype=torch.float32, device=dev
        )
        self.actions = torch.zeros(self.num_envs, self.num_actions, device=dev)
        self.last_actions = torch.zeros_like(self.actions)
        self._sensor_rows: dict[str, slice] = {}

    # --- action mapping -----------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        """The joints the policy drives (default: every actuated joint)."""
        return self.emb.joint_names

    @property
    def num_actions(self) -> int:
        return len(self.joint_names)

    def apply_actions(self, actions: torch.Tensor) -> None:
        """Policy actions (N, num_actions), already clipped and delayed, -> sim.ctrl."""
        ctrl = self.default_pose + self.cfg.action_scale * actions
        self.sim.ctrl[:, self.ctrl_index] = ctrl.to(self.sim.ctrl.dtype)

    # --- per step -----------------------------------------------------------------------
    def obs_terms(self) -> list[ObsTerm]:
        raise NotImplementedError

    def reward_terms(self) -> list[RewardTerm]:
        """The terms with their default weights (the config's `rewards` override them)."""
        raise NotImplementedError

    def critic_terms(self) -> list[ObsTerm]:
        """Privileged observations for the critic only (never exported, never noised)."""
        return []

    def terminated(self) -> torch.Tensor:
        """(N,) bool: the episode ended in failure (a fall, a collision)."""
        return torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def success(self) -> torch.Tensor:
        """(N,) bool: the episode has succeeded so far (used by eval)."""
        return torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def metrics(self) -> dict[str, torch.Tensor]:
        """(N,) per-step quantities that eval averages over an episode (e.g. tracking error)."""
        return {}

    def episode_log(self) -> dict[str, torch.Tensor]:
        """0-d tensors the env adds to `extras["log"]` at steps where episodes end (the
        state of a curriculum, e.g. the mean terrain level); empty by default."""
        return {}

    def post_step(self) -> None:
        """Update task state after physics (timers, command resampling)."""

    def reset_envs(self, env_ids: torch.Tensor) -> None:
        """Sample new commands/targets and initial states for `env_ids` (physics reset)."""
        self.sim.reset(env_ids)

    # --- shared terms -------------------------------------------------------------------
    def joint_pos_rel(self) -> torch.Tensor:
        return self.sim.qpos[:, self.actuated_qadr].float() - self.default_pose

    def joint_vel(self) -> torch.Tensor:
        return self.sim.qvel[:, self.actuated_dadr].float()

    def last_action(self) -> torch.Tensor:
        return self.actions

    def action_rate(self) -> torch.Tensor:
        return (self.actions - self.last_actions).square().sum(1)

    def sensor(self, name: str) -> torch.Tensor:
        """Rows of sensor `name` from sim.sensordata, float32."""
        rows = self._sensor_rows.get(name)
        if rows is None:  # the name lookup costs more than the slice: once per name
            s = self.sim.model.sensor(name)
            rows = self._sensor_rows[name] = slice(int(s.adr[0]), int(s.adr[0] + s.dim[0]))
        return self.sim.sensordata[:, rows].float()


def add_frame_sensors(
    spec: mujoco.MjSpec, prefix: str, objtype: mujoco.mjtObj, objname: str
) -> None:
    """framepos/framequat (world frame) sensors named `<prefix>_pos`, `<prefix>_quat`."""
    spec.add_sensor(
        name=f"{prefix}_pos",
        type=mujoco.mjtSensor.mjSENS_FRAMEPOS,
        objtype=objtype,
        objname=objname,
    )
    spec.add_sensor(
        name=f"{prefix}_quat",
        type=mujoco.mjtSensor.mjSENS_FRAMEQUAT,
        objtype=objtype,
        objname=objname,
    )
