"""The safety filter between a policy and a robot (ROS-free; the ROS safety node wraps it).

Every control tick the filter turns the latest policy command into the target the robot
gets, in the Embodiment's joint order (position targets in rad or m for position-actuated
joints, velocity targets in rad/s or m/s for velocity-actuated ones). The stages, in order:

1. inputs are checked on arrival:
   - `command`: a NaN/inf value or a target outside the joint's limits raises ValueError
     naming the joint, the value and the limit; the previous good command stays (so a
     stream of bad commands goes stale);
   - `state`: a reading whose position jumped from the last accepted one by more than
     `plausible_factor` x velocity limit x dt + `plausible_margin` (a spike, a glitching
     encoder) raises ValueError naming the joint and is *not* taken: the robot is held on
     the last good reading until a plausible one arrives;
2. the wanted target: the command (after a soft start), or a hold when something is wrong:
   - watchdog: no state for `state_timeout_s`, no command for `command_timeout_s`, or an
     implausible reading -> hold ("hold": the pose measured when it went wrong; "damp":
     the latest good measured pose, so the joints give way; velocity actuators: zero);
   - a latching e-stop (`estop`), cleared only by `reset`; an e-stop before the first
     state holds the first measured pose;
   - soft start: whenever control (re)starts after a hold, the target ramps from the
     measured pose to the command over `ramp_s` (a watchdog hold shorter than `blip_s`
     picks the ramp up where it was; an e-stop always ramps anew);
3. effort: a commanded position target is kept where the PD torque kp (target - q) - kd dq
   stays within +-effort_limit (what the actuator would clip to anyway; a hold's target is
   a measured pose, left as it is);
4. the joint's position range;
5. **the bound, last**: the target moves at most velocity_limit x `velocity_scale` x dt
   from the previous output (dt capped at `max_dt_s`), so no reading, command or hold
   can move a command further than that in one tick (a joint whose body gives no finite
   velocity limit gets `default_velocity`, listed in `defaulted`). Velocity targets are
   bounded by their range alone.

Before the first joint state nothing is commanded (`output` returns None).
"""

from __future__ import annotations

import dataclasses
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
    max_dt_s: float = 0.1  # s: the longest tick the rate bound allows for
    plausible_factor: float = 2.0  # a reading may move this x velocity limit x dt ...
    plausible_margin: float = 0.05  # ... plus this (rad or m) from the last good one
    default_velocity: float = 2.0  # rad/s or m/s for joints whose file gives no finite limit

    def __post_init__(self) -> None:
        for name in ("state_timeout_s", "command_timeout_s", "velocity_scale", "blip_s",
                     "max_dt_s", "plausible_factor", "default_velocity"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")
        for name in ("ramp_s", "plausible_margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 0")
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
        # a joint without a finite velocity limit (an MJCF file need not give one) would
        # have no rate bound: it gets cfg.default_velocity, named in `defaulted`
        unbounded = ~np.isfinite(limits.velocity) & (not limits.velocity_actuated)
        self.defaulted = [limits.names[i] for i in np.flatnonzero(unbounded)]
        if self.defaulted:
            velocity = np.where(unbounded, cfg.default_velocity, limits.velocity)
            limits = dataclasses.replace(limits, velocity=velocity)
        self.limits = limits
        n = len(limits.names)
        self.q = np.zeros(n)
        self.dq = np.zeros(n)
        self.t_state: float | None = None
        self.suspect = ""  # why the latest reading was refused; "" when it was taken
        self.cmd: np.ndarray | None = None
        self.t_cmd: float | None = None
        self.estopped = ""  # reason, "" when not latched
        self.mode = "waiting"  # waiting | hold | ramp | active | estop
        self.reason = "no joint state yet"
        self.hold_pose: np.ndarray | None = None  # None: the next measured pose
        self.last_out: np.ndarray | None = None
        self.t_out: float | None = None
        self.ramp_from = np.zeros(n)
        self.ramp_t0 = 0.0
        self.t_hold = -1e9
        self.interrupted = False  # the last hold cut a running ramp or active control
        self.counts = {"rejected": 0, "implausible": 0, "holds": 0, "limited": 0}

    # --- inputs -------------------------------------------------------------------------
    def state(self, t: float, q: np.ndarray, dq: np.ndarray) -> None:
        """A measured state: positions (nj,) and velocities (nj,) in joint order. Raises
        ValueError (and keeps the last good reading) if the positions jumped implausibly."""
        q = np.asarray(q, dtype=float)
        dq = np.asarray(dq, dtype=float)
        if self.t_state is not None and not self.limits.velocity_actuated:
            dt = max(t - self.t_state, 0.0)
            allowed = (
                self.cfg.plausible_factor * self.limits.velocity * dt + self.cfg.plausible_margin
            )
            jump = np.abs(q - self.q)
            bad = np.flatnonzero(jump > allowed)
            if bad.size:
                i = int(bad[0])
                self.counts["implausible"] += 1
                self.suspect = (
                    f"implausible joint state: {self.limits.names[i]!r} jumped "
                    f"{jump[i]:.4g} in {1e3 * dt:.0f} ms (at most {allowed[i]:.4g} plausible)"
                )
                raise ValueError(self.suspect)
        self.q, self.dq, self.t_state, self.suspect = q.copy(), dq.copy(), t, ""

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
        wrong = self._wrong(t)
        if self.estopped:
            self.mode, self.reason = "estop", self.estopped
            wanted = self._hold_target()
        elif wrong:
            if self.mode not in ("hold", "waiting"):
                self.counts["holds"] += 1
            if self.mode != "hold":
                self._hold(wrong)
            self.reason = wrong
            wanted = self._hold_target()
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
            wanted = self._ramp_target(t)
        out = self._bound(t, wanted)
        self.last_out, self.t_out = out, t
        return out

    def _wrong(self, t: float) -> str:
        if self.suspect:
            return self.suspect
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
        self.hold_pose = self.q.copy() if self.t_state is not None else None

    def _hold_target(self) -> np.ndarray:
        if self.limits.velocity_actuated:
            return np.zeros_like(self.q)
        if self.hold_pose is None:  # held before any state: the first measured pose
            self.hold_pose = self.q.copy()
        return self.q if self.cfg.stale_mode == "damp" else self.hold_pose

    def _ramp_target(self, t: float) -> np.ndarray:
        alpha = 1.0 if self.cfg.ramp_s == 0 else min(1.0, (t - self.ramp_t0) / self.cfg.ramp_s)
        if alpha >= 1.0:
            self.mode, self.reason = "active", ""
        return self.ramp_from + alpha * (self.cmd - self.ramp_from)

    def _bound(self, t: float, wanted: np.ndarray) -> np.ndarray:
        """Effort, range, then the rate bound: nothing after it moves the target."""
        lim = self.limits
        target = wanted
        if not lim.velocity_actuated and self.mode in ("ramp", "active"):
            # keep |kp (target - q) - kd dq| <= effort (a hold's pose is a measured one)
            base = self.q + lim.kd * self.dq / lim.kp
            reach = lim.effort / lim.kp
            target = np.clip(target, base - reach, base + reach)
        target = np.clip(target, lim.low, lim.high)
        if not lim.velocity_actuated and self.last_out is not None:
            step = lim.velocity * self.cfg.velocity_scale * self.max_step_dt(t)
            target = np.clip(target, self.last_out - step, self.last_out + step)
        if self.mode in ("ramp", "active") and not np.allclose(target, wanted):
            self.counts["limited"] += 1
        return target

    def max_step_dt(self, t: float) -> float:
        """The dt (s) the rate bound allows for between the last output and `t`."""
        return 0.0 if self.t_out is None else min(max(t - self.t_out, 0.0), self.cfg.max_dt_s)

    def status(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, **self.counts}
