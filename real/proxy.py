"""The real-proxy: a robot whose joints do not move the way the trainer's simulator says.

`ProxyRobot` is a `SimRobot` (same interface as hardware) with effects that the nominal
model lacks and that no training code ever sees. Per joint j, with effort limit E_j, velocity
limit V_j and nominal derivative gain kd_j from the Embodiment:

- actuator latency: the targets acting during control period t are the ones sent at
  t - `latency_steps` (a transport + driver delay, in whole control periods);
- Coulomb friction `coulomb_frac` * E_j (N m, MuJoCo dry joint friction) and viscous
  friction `viscous_ratio` * kd_j (N m s/rad, extra joint damping);
- backlash: the PD acts on the motor-side angle q_m, which follows the joint angle q
  through a dead band of total width `backlash` rad (play operator: q_m moves only once
  |q - q_m| reaches backlash/2), so the joint can rest anywhere in the play;
- torque-speed limit: a driving torque (same sign as dq_j) is at most `torque_scale` * E_j *
  max(0, 1 - |dq_j| / (`speed_scale` * V_j)) (a DC motor's linear torque-speed line), a
  braking torque at most `torque_scale` * E_j;
- joint-position sensor: the reading is q + bias_j + noise, bias_j drawn once per robot
  from U(-`sensor_bias`, `sensor_bias`) rad, noise N(0, `sensor_noise`) rad per reading;
  velocity readings get N(0, `velocity_noise`) rad/s;
- payload: `payload_kg` kg added to `payload_body` (default: the body of the end-effector
  site for arms, the base for others).

Effects act only on position actuators except latency, friction, the torque-speed limit
and the sensor, which act on every joint. Everything is drawn from `seed`: two robots
with the same config and seed behave identically. `ProxyConfig.nominal()` switches every
effect off (the proxy then equals `SimRobot`).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from xembody.models.cfg import help_field
from xembody.models.dataset_meta import read_meta, robot_identity
from xembody.real.robot import ROBOTS, Robot, RobotState, SimRobot, class_path, robot_class
from xembody.sim.bodies.embodiment import Embodiment


@dataclass(kw_only=True)
class ProxyConfig:
    latency_steps: int = help_field(2, "actuator latency in control periods (0-3)")
    coulomb_frac: float = help_field(0.03, "Coulomb friction as a fraction of each effort limit")
    viscous_ratio: float = help_field(0.5, "viscous friction as a multiple of each joint's kd")
    backlash: float = help_field(0.02, "total backlash play per joint (rad or m)")
    torque_scale: float = help_field(0.8, "peak actuator torque as a fraction of the effort limit")
    speed_scale: float = help_field(1.0, "no-load speed as a multiple of the velocity limit")
    sensor_noise: float = help_field(0.002, "joint-position reading noise std (rad)")
    sensor_bias: float = help_field(0.005, "largest joint-position reading bias (rad)")
    velocity_noise: float = help_field(0.02, "joint-velocity reading noise std (rad/s)")
    payload_kg: float = help_field(0.0, "extra mass on the payload body (kg)")
    payload_body: str = help_field("", "body carrying the payload ('': end effector or base)")

    def __post_init__(self) -> None:
        if not 0 <= self.latency_steps <= 3:
            raise ValueError(f"latency_steps={self.latency_steps}, expected 0 to 3")
        for name in (
            "coulomb_frac", "viscous_ratio", "backlash", "sensor_noise", "sensor_bias",
            "velocity_noise", "payload_kg",
        ):  # fmt: skip
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 0")
        for name in ("torque_scale", "speed_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")
        if self.coulomb_frac >= self.torque_scale:
            raise ValueError(
                f"coulomb_frac={self.coulomb_frac}: expected < torque_scale="
                f"{self.torque_scale} (the motor could never overcome friction)"
            )

    @classmethod
    def nominal(cls) -> ProxyConfig:
        """Every effect off: the proxy behaves like the nominal simulator."""
        return cls(latency_steps=0, coulomb_frac=0.0, viscous_ratio=0.0, backlash=0.0,
                   torque_scale=1.0, speed_scale=1e9, sensor_noise=0.0, sensor_bias=0.0,
                   velocity_noise=0.0)  # fmt: skip

    def replace(self, **changes) -> ProxyConfig:
        return dataclasses.replace(self, **changes)


class ProxyRobot(SimRobot):
    """A `SimRobot` with the hidden effects of `config` (see the module docstring)."""

    def __init__(
        self,
        embodiment: Embodiment,
        config: ProxyConfig | None = None,
        control_dt: float = 0.02,
        seed: int = 0,
        **kwargs,
    ):
        self.config = config or ProxyConfig()
        super().__init__(embodiment, control_dt, seed, **kwargs)
        c, joints = self.config, embodiment.joints
        self.bias = self.rng.uniform(-c.sensor_bias, c.sensor_bias, self.num_joints)
        effort = np.array([j.effort_limit for j in joints])
        self.peak_torque = c.torque_scale * effort
        self.no_load_speed = c.speed_scale * np.array([j.velocity_limit for j in joints])

    def _build_model(self, model: mujoco.MjModel) -> mujoco.MjModel:
        m = super()._build_model(model)
        c, emb = self.config, self.embodiment
        for j in emb.joints:
            dof = m.jnt_dofadr[m.joint(j.name).id]
            m.dof_frictionloss[dof] += c.coulomb_frac * j.effort_limit
            if c.coulomb_frac > 0:  # stiff dry friction: MuJoCo's default lets joints creep
                m.dof_solimp[dof, :2] = (0.99, 0.999)
                m.dof_solref[dof] = (2 * m.opt.timestep, 1.0)
            m.dof_damping[dof] += c.viscous_ratio * j.kd
        if emb.action.kind == "joint_position":
            m.actuator_ctrllimited[: len(emb.joints)] = 0  # the backlash shift may leave the range
        m.actuator_forcelimited[: len(emb.joints)] = 1
        if c.payload_kg > 0:
            body = m.body(c.payload_body or self._payload_body(m)).id
            m.body_inertia[body] *= (m.body_mass[body] + c.payload_kg) / max(
                m.body_mass[body], 1e-9
            )
            m.body_mass[body] += c.payload_kg
        return m

    def _payload_body(self, m: mujoco.MjModel) -> str:
        s = self.embodiment.sensors
        if s.ee_site:
            return m.body(m.site(s.ee_site).bodyid[0]).name
        return s.base_body or m.body(1).name

    # --- hidden effects -----------------------------------------------------------------
    def _sync(self) -> None:
        self.motor_q = self.data.qpos[self.qadr].copy()  # backlash: motor-side angles
        self.queue = deque([self._sent.copy()] * self.config.latency_steps)

    def _latch(self, targets: np.ndarray) -> np.ndarray:
        self.queue.append(targets.copy())
        return self.queue.popleft()

    def _substep(self) -> None:
        d, c = self.data, self.config
        q, dq = d.qpos[self.qadr], d.qvel[self.dadr]
        if self.position and c.backlash > 0:
            half = c.backlash / 2
            self.motor_q = np.clip(self.motor_q, q - half, q + half)
            d.ctrl[self.act_ids] = self.command + (q - self.motor_q)
        # driving torque follows the torque-speed line; braking may use the peak torque
        line = self.peak_torque * np.clip(1 - np.abs(dq) / self.no_load_speed, 0.0, 1.0)
        fr = self.model.actuator_forcerange
        fr[self.act_ids, 0] = np.where(dq < 0, -line, -self.peak_torque)
        fr[self.act_ids, 1] = np.where(dq > 0, line, self.peak_torque)

    def read(self) -> RobotState:
        return self._measure(super().read())

    def _measure(self, s: RobotState) -> RobotState:
        if not hasattr(self, "bias"):  # during SimRobot.__init__'s first reset
            return s
        c, n = self.config, self.num_joints
        s.q = s.q + self.bias + c.sensor_noise * self.rng.standard_normal(n)
        s.dq = s.dq + c.velocity_noise * self.rng.standard_normal(n)
        return s

    def true_q(self) -> np.ndarray:
        """The joint positions without sensor bias or noise (for evaluation only)."""
        return self.data.qpos[self.qadr].copy()


BUILT_IN = ("", "xembody.real.robot:SimRobot", "xembody.real.proxy:ProxyRobot")
CONFIG_KEYS = ("body", "body_seed", "seed", "control_dt", "suspended", "proxy")


@dataclass(kw_only=True)
class RobotConfig:
    """Which robot to build: a body, its proxy effects (None: nominal `SimRobot`), seeds,
    and optionally a robot class of its own.

    `robot`: "" (the built-in robots: `ProxyRobot` with `proxy`, `SimRobot` without), a
    registered id ("ros") or a "module:Class" path (see `xembody.real.robot`); `options`:
    that class's keyword arguments (JSON values). Stored as JSON: {"body": "arm",
    "body_seed": 0, "seed": 0, "control_dt": 0.02, "suspended": true, "proxy":
    {<ProxyConfig fields>} or null, "robot": "", "options": {}}."""

    body: str = "arm"
    body_seed: int = 0
    seed: int = 0
    control_dt: float = 0.02
    suspended: bool = True  # legged bodies hang on a stand (ignored by fixed bases)
    proxy: ProxyConfig | None = dataclasses.field(default_factory=ProxyConfig)
    robot: str = ""
    options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.control_dt > 0:
            raise ValueError(f"control_dt={self.control_dt}, expected > 0")
        if not isinstance(self.options, dict):
            raise ValueError(f"options={self.options!r}, expected a dict of keyword arguments")
        if self.robot in BUILT_IN and self.options:
            raise ValueError(f"options={self.options}: the built-in robots take none")

    def embodiment(self) -> Embodiment:
        from xembody.sim.bodies.reference import resolve_body

        return resolve_body(self.body, self.body_seed)

    def robot_class(self) -> type[Robot]:
        if not self.robot:
            return SimRobot if self.proxy is None else ProxyRobot
        return robot_class(self.robot)

    def make(self, seed: int | None = None, **kwargs) -> Robot:
        """A new robot (`seed` overrides the noise seed; kwargs go to the robot class,
        `model=` and `suspended=` for `SimRobot`s)."""
        emb = self.embodiment()
        kwargs.setdefault("suspended", self.suspended and emb.floating_base)
        seed = self.seed if seed is None else seed
        cls = self.robot_class()
        if issubclass(cls, ProxyRobot):
            if self.proxy is None:
                raise ValueError(f"robot {self.robot}: a ProxyRobot needs proxy (got null)")
            kwargs["config"] = self.proxy
        elif self.proxy is not None:
            raise ValueError(
                f"robot {class_path(cls)}: proxy={self.proxy} but the class is no ProxyRobot "
                "(set proxy to null)"
            )
        try:
            return cls(emb, control_dt=self.control_dt, seed=seed, **self.options, **kwargs)
        except TypeError as err:
            raise ValueError(f"robot {class_path(cls)}, options {self.options}: {err}") from None

    def nominal(self) -> RobotConfig:
        """The trainer's simulator of the same body: `SimRobot`, no effects, same seeds."""
        return dataclasses.replace(self, proxy=None, robot="", options={})

    def identity(self) -> dict:
        """{"class", "config", "hash"}: what a dataset records of the robot it came from
        (`xembody.models.dataset_meta.robot_identity`); the hash names class and settings."""
        config = self.to_dict()
        config.pop("robot")
        return robot_identity(class_path(self.robot_class()), config)

    def describe(self) -> str:
        """One line naming the robot: class, body, seeds and the identity hash."""
        return describe_identity(self.identity())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RobotConfig:
        d = dict(d)
        proxy = d.pop("proxy", {})
        try:
            return cls(**d, proxy=None if proxy is None else ProxyConfig(**proxy))
        except TypeError as err:
            raise ValueError(f"not a robot config: {err}") from None

    @classmethod
    def from_identity(cls, ident: dict) -> RobotConfig:
        """The robot a dataset's identity names (`xembody.models.dataset_meta.read_meta`)."""
        robot = ident["class"]
        return cls.from_dict({**ident["config"], "robot": "" if robot in BUILT_IN else robot})

    @classmethod
    def load(cls, spec: str, options: dict | None = None) -> RobotConfig:
        """`spec`: a JSON file written by `save`; a body class / body file (default proxy
        effects), optionally suffixed ":nominal" for the nominal simulator; or a robot id
        ("ros") or "module:Class" with `options`: the class's keyword arguments, except
        keys that name fields of this config (body, body_seed, seed, control_dt,
        suspended, proxy), which set them (without "body": the class's `default_body`)."""
        import json
        from pathlib import Path

        if spec.endswith(".json") and Path(spec).is_file():
            if options:
                raise ValueError(f"--robot {spec}: a robot config file takes no options")
            return cls.from_dict(json.loads(Path(spec).read_text()))
        if spec.endswith(".json"):
            raise FileNotFoundError(f"--robot {spec!r}: no such robot config file")
        body, _, kind = spec.partition(":")
        if spec not in ROBOTS and kind in ("", "nominal", "proxy"):
            if options:
                raise ValueError(f"--robot {spec}: the built-in robots take no options")
            return cls(body=body, proxy=None if kind == "nominal" else ProxyConfig())
        robot = robot_class(spec)
        own = dict(options or {})
        fields = {k: own.pop(k) for k in CONFIG_KEYS if k in own}
        fields.setdefault("body", getattr(robot, "default_body", None))
        if not fields["body"]:
            raise ValueError(f'--robot {spec}: which body? give "body" in its options')
        proxy = fields.pop("proxy", {} if issubclass(robot, ProxyRobot) else None)
        return cls.from_dict({**fields, "proxy": proxy, "robot": spec, "options": own})


def describe_identity(ident: dict) -> str:
    """ "ProxyRobot (xembody.real.proxy) on arm, body seed 0, seed 0 [hash 1a2b3c4d5e]"."""
    module, _, name = ident["class"].partition(":")
    c = ident["config"]
    return (f"{name} ({module}) on {c.get('body')}, body seed {c.get('body_seed')}, "
            f"seed {c.get('seed')} [hash {ident['hash']}]")  # fmt: skip


def dataset_robot(meta: dict) -> tuple[RobotConfig, str]:
    """The robot a collected dataset was recorded on, from its meta, and a note ("" or
    why the identity was inferred: datasets written before robots were identified)."""
    ident = read_meta(meta).get("robot_id")
    if ident is None:
        raise ValueError("dataset meta names no robot (not recorded by `xembody collect`?)")
    note = ""
    if ident.get("legacy"):
        note = (f"note: the dataset predates robot identities; taken as the built-in "
                f"{describe_identity(ident)}")  # fmt: skip
    return RobotConfig.from_identity(ident), note


class NominalSim:
    """The nominal simulator of a collected dataset's robot (its meta["robot"]) as a k-step
    predictor of `xembody.models.dynamics_eval` (`rollout` has the `Predictor` signature)."""

    def __init__(self, meta: dict):
        self.robot = dataset_robot(meta)[0].nominal().make()

    def rollout(self, q_hist, dq_hist, u_hist, u_future):
        """q after each of the K targets, (B, K, nj) float32 tensor (see the class doc)."""
        import torch

        r, out = self.robot, []
        for b in range(len(q_hist)):
            r.reset(q_hist[b, -1].double().numpy())
            r.data.qvel[r.dadr] = dq_hist[b, -1].double().numpy()
            targets = [u_hist[b, -1]] + list(u_future[b])
            rows = []
            for u in targets:
                r.send(u.double().numpy())
                rows.append(r.step().q)
            out.append(np.stack(rows))
        return torch.from_numpy(np.stack(out)).float()
