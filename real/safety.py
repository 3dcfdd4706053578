"""The safety filter between a policy and a robot (ROS-free; the ROS safety node wraps it).

Every control tick the filter turns the latest policy command into the target the robot
gets, in the Embodiment's joint order (position targets in rad or m for position-actuated
joints, velocity targets in rad/s or m/s for velocity-actuated ones):

- commands are checked on arrival (`command`): a NaN/inf value or a target outside the
  joint's limits raises ValueError naming the joint, the value and the limit; the caller
  logs it and the previous good command stays (so a stream of bad commands goes stale);
- limits on every output: position range, target rate (`velocity_limit`, rad/s) and effort:
  a position target is kept where the PD torque kp (target - q) - kd dq stays within
  +-effort_limit (what the actuator would clip to anyway);
- watchdog: no state for `state_timeout_s` or no command for `command_timeout_s` -> the
  robot is held ("hold": the pose measured when it went stale; "damp": the latest measured
  pose, so the joints give way; velocity actuators: zero velocity);
- a latching e-stop (`estop`), cleared only by `reset`;
- soft start: whenever control (re)starts after a hold, the target ramps from the measured
  pose to the commanded one over `ramp_s` (a watchdog hold shorter than `blip_s`, a late
  message on a busy machine, picks the ramp up where it was; an e-stop always ramps anew).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xembody.sim.bodies.embodiment import Embodiment

STALE_MODES = ("hold", "damp")


@dataclass(kw_only=True)
class SafetyConfig:
    state_timeout_s: float = 0.05  # s without a joint state before holding
    command_timeout_s: float = 0.1  # s without a command before holding
    stale_mode: str = "hold"  # "hold" or "damp" (see the module docstring)
    ramp_s: float = 1.0  # s of soft start from the measured pose to the command
    velocity_scale: float = 1.0  # fraction of each joint's velocity limit allowed
    blip_s: float = 0.2  # s: a watchdog hold shorter than this resumes without a new ramp

    def __post_init__(self) -> None:
        for name in ("state_timeout_s", "command_timeout_s", "velocity_scale", "blip_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")
        if self.ramp_s < 0:
            raise ValueError(f"ramp_s={self.ramp_s}, expected >= 0")
        if self.stale_mode not in STALE_MODES:
            raise ValueError(f"stale_mode={self.stale_mode!r}, expected one of {STALE_MODES}")


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits in joint order; arrays (nj,). `velocity_actuated` marks joints whose
    targets are velocities (wheels): their range is the actuator's target range."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    velocity: np.ndarray  # rad/s (inf: none)
    effort: np.ndarray  # N m
    kp: np.ndarray
    kd: np.ndarray
    velocity_actuated: bool

    @classmethod
    def from_embodiment(cls, emb: Embodiment) -> JointLimits:
        vel = emb.action.kind == "joint_velocity"
        js = emb.joints
        low = np.array(emb.action.low if vel else [j.range[0] for j in js], dtype=float)
        high = np.array(emb.action.high if vel else [j.range[1] for j in js], dtype=float)
        return cls(
            names=emb.joint_names,
            low=low,
            high=high,
            velocity=np.array([j.velocity_limit for j in js], dtype=float),
            effort=np.array([j.effort_limit for j in js], dtype=float),
            kp=np.array([j.kp for j in js], dtype=float),
            kd=np.array([j.kd for j in js], dtype=float),
            velocity_actuated=vel,
        )

    def check(self, targets: np.ndarray, what: str = "command") -> None:
        """Raise ValueError naming the first joint whose target is NaN/inf or out of range."""
        targets = np.asarray(targets, dtype=float)
        if targets.shape != (len(self.names),):
            raise ValueError(
                f"{what} has {targets.size} values, expected {len(self.names)} "
                f"(joints {list(self.names)})"
            )
        for i, value in enumerate(targets):
            if not np.isfinite(value):
                raise ValueError(f"{what}: joint {self.names[i]!r} target is {value}")
            if not self.low[i] - 1e-6 <= value <= self.high[i] + 1e-6:
                raise ValueError(
                    f"{what}: joint {self.names[i]!r} target {value:.4g} is beyond its limits "
                    f"[{self.low[i]:.4g}, {self.high[i]:.4g}]"
                )


class SafetyFilter:
    """See the module docstring. Times are seconds on one monotonic clock."""

    def __init__(self, cfg: SafetyConfig, limits: JointLimits):
        self.cfg = cfg
        self.limits = limits
        n = len(limits.names)
        self.q = np.zeros(n)
        self.dq = np.zeros(n)
        self.t_state: float | None = None
        self.cmd: np.ndarray | None = None
        self.t_cmd: float | None = None
        self.estopped = ""  # reason, "" when not latched
        self.mode = "waiting"  # waiting | hold | ramp | active | estop
        self.reason = "no joint state yet"
        self.hold_pose = np.zeros(n)
        self.last_out: np.ndarray | None = None
        self.t_out: float | None = None
        self.ramp_from = np.zeros(n)
        self.ramp_t0 = 0.0
        self.t_hold = -1e9
        self.interrupted = False  # the last hold cut a running ramp or active control
        self.counts = {"rejected": 0, "holds": 0, "limited": 0}

    # --- inputs -------------------------------------------------------------------------
    def state(self, t: float, q: np.ndarray, dq: np.ndarray) -> None:
        """A measured state: positions (nj,) and velocities (nj,) in joint order."""
        self.q = np.asarray(q, dtype=float)
        self.dq = np.asarray(dq, dtype=float)
        self.t_state = t

    def command(self, t: float, targets: np.ndarray) -> None:
        """A policy command (nj,); raises ValueError (and keeps the last good one) if bad."""
        try:
            self.limits.check(targets)
        except ValueError:
            self.counts["rejected"] += 1
            raise
        self.cmd = np.asarray(targets, dtype=float).copy()
        self.t_cmd = t

    def estop(self, reason: str = "e-stop requested") -> None:
        if not self.estopped:
            self.estopped = reason
            self._hold(reason)

    def reset(self) -> None:
        """Clear a latched e-stop; control resumes (with a soft start) on fresh commands."""
        self.estopped = ""

    # --- output -------------------------------------------------------------------------
    def output(self, t: float) -> np.ndarray | None:
        """The target (nj,) to send at time `t`, or None before the first joint state."""
        if self.t_state is None:
            return None
        stale = self._stale(t)
        if self.estopped:
            self.mode, self.reason = "estop", self.estopped
            out = self._hold_target()
        elif stale:
            if self.mode not in ("hold", "waiting"):
                self.counts["holds"] += 1
            if self.mode != "hold":
                self._hold(stale)
            self.reason = stale
            out = self._hold_target()
        else:
            if self.mode in ("hold", "waiting", "estop"):
                blip = (
                    self.mode == "hold" and self.interrupted and t - self.t_hold < self.cfg.blip_s
                )
                self.mode, self.reason = "ramp", "soft start"
                if blip:  # continue the ramp from where the hold interrupted it
                    self.ramp_t0 += t - self.t_hold
                else:
                    self.ramp_t0 = t
                    self.ramp_from = (
                        np.zeros_like(self.q) if self.limits.velocity_actuated else self.q.copy()
                    )
            out = self._active_target(t)
        self.last_out, self.t_out = out, t
        return out

    def _stale(self, t: float) -> str:
        if t - self.t_state > self.cfg.state_timeout_s:
            return f"joint state stale ({1e3 * (t - self.t_state):.0f} ms old)"
        if self.t_cmd is None:
            return "no command yet"
        if t - self.t_cmd > self.cfg.command_timeout_s:
            return f"command stale ({1e3 * (t - self.t_cmd):.0f} ms old)"
        return ""

    def _hold(self, reason: str) -> None:
        self.interrupted = self.mode in ("ramp", "active") and not self.estopped
        self.mode, self.reason = ("estop" if self.estopped else "hold"), reason
        self.t_hold = self.t_out if self.t_out is not None else 0.0
        self.hold_pose = self.q.copy()

    def _hold_target(self) -> np.ndarray:
        if self.limits.velocity_actuated:
            return np.zeros_like(self.q)
        pose = self.q if self.cfg.stale_mode == "damp" else self.hold_pose
        return np.clip(pose, self.limits.low, self.limits.high)

    def _active_target(self, t: float) -> np.ndarray:
        lim = self.limits
        alpha = 1.0 if self.cfg.ramp_s == 0 else min(1.0, (t - self.ramp_t0) / self.cfg.ramp_s)
        if alpha >= 1.0:
            self.mode, self.reason = "active", ""
        target = self.ramp_from + alpha * (self.cmd - self.ramp_from)
        wanted = target.copy()
        if not lim.velocity_actuated:
            if self.last_out is not None and self.t_out is not None:
                dt = min(max(t - self.t_out, 0.0), 0.1)
                step = lim.velocity * self.cfg.velocity_scale * dt
                target = np.clip(target, self.last_out - step, self.last_out + step)
            # keep |kp (target - q) - kd dq| <= effort
            base = self.q + lim.kd * self.dq / lim.kp
            reach = lim.effort / lim.kp
            target = np.clip(target, base - reach, base + reach)
        target = np.clip(target, lim.low, lim.high)
        if not np.allclose(target, wanted):
            self.counts["limited"] += 1
        return target

    def status(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, **self.counts}
