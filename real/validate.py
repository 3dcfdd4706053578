"""Checks on what arrives from the outside (ROS-free): joint states and command vectors.

Every check raises `InputError` (a ValueError) whose message names the problem, so a node
logs it and keeps running with the last good input:

- `JointStateCheck(names)(names, q, dq, tau, stamp, now)` -> (q, dq, tau) in *our* joint
  order, merged by name from whatever messages carry our joints. The conventions of
  ros2_control's joint_state_broadcaster are accepted as they are:
  - joints we do not drive (extra names) are ignored; a name given twice is refused;
  - a joint may come in one message and another joint in another (an arm controller and a
    gripper controller publishing separately): each message updates its joints, and
    `oldest` is the receipt time of the least recent one (per-joint staleness); until
    every joint has been heard of, InputError("partial") names the missing ones;
  - NaN in an interface nobody reads is ignored (effort, which broadcasters fill with NaN
    when the hardware has none; velocity when `velocity` is "off"); NaN/inf in one that is
    read is refused;
  - position-only states (empty or NaN velocity) get a velocity by filtered difference of
    the positions over their stamps (`velocity="auto"`, the default: first-order low-pass,
    time constant `velocity_tau_s`); `velocity="measured"` refuses them.
  Time cannot be poisoned: a stamp more than `max_ahead_s` ahead of the caller's clock
  (`now`, same time base as the stamps) is refused and leaves the ordering state alone; a
  stamp not after its joints' last one is refused as out of order, but such stamps that
  advance among themselves, at least `resync_after` of them over `resync_s` (0.1 s) of
  receipt time with no message taken in between (a clock stepped back: a sim reset, NTP),
  re-sync the ordering to the new clock, counted in `resyncs` with a log line. A second
  publisher with another clock, interleaved with the genuine stream, never re-syncs it.
- `RateGate(max_hz)`: a token bucket; a flood beyond `max_hz` (with a burst of `burst`
  messages) is rejected message by message. `RateGates` keeps one per publisher.
- `check_vector(values, size, what)`: a command vector of the right size, all finite.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

VELOCITY_MODES = ("auto", "measured", "off")


class InputError(ValueError):
    """Bad input from outside; `kind` is a short tag for counters and throttled logs."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class JointStateCheck:
    def __init__(
        self,
        names: Sequence[str],
        *,
        velocity: str = "auto",
        max_ahead_s: float = 0.5,
        resync_after: int = 3,
        resync_s: float = 0.1,
        velocity_tau_s: float = 0.02,
    ):
        if velocity not in VELOCITY_MODES:
            raise ValueError(f"velocity={velocity!r}, expected one of {VELOCITY_MODES}")
        self.names = tuple(names)
        self.velocity = velocity
        self.max_ahead_s = max_ahead_s
        self.resync_after = resync_after
        self.resync_s = resync_s
        self.velocity_tau_s = velocity_tau_s
        n = len(self.names)
        self.q = np.full(n, np.nan)
        self.dq = np.zeros(n)
        self.tau = np.full(n, np.nan)
        self.stamp = np.full(n, -np.inf)  # last accepted stamp per joint
        self.received = np.full(n, -np.inf)  # caller's receipt time per joint
        self.seen = np.zeros(n, dtype=bool)
        self.behind: list[tuple[float, float]] = []  # (stamp, received) refused in a row
        self.resyncs = 0
        self.last_resync = ""  # what the last re-sync did, for the caller's log
        self._index_cache: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._where = {name: i for i, name in enumerate(self.names)}

    @property
    def oldest(self) -> float:
        """Receipt time of the joint heard of least recently (-inf before all are heard)."""
        return float(self.received.min())

    def index(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ours, theirs): `values[theirs]` fill our joints `ours`, for a message's `names`;
        names we do not drive are left out."""
        names = tuple(names)
        cached = self._index_cache.get(names)
        if cached is not None:
            return cached
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InputError("names", f"JointState rejected: duplicate joint name(s) {dupes}")
        pairs = [(self._where[n], k) for k, n in enumerate(names) if n in self._where]
        if not pairs:
            raise InputError(
                "names",
                f"JointState rejected: none of its joints {list(names)[:8]} is ours "
                f"(expected some of {list(self.names)})",
            )
        ours = np.array([p[0] for p in pairs], dtype=np.intp)
        theirs = np.array([p[1] for p in pairs], dtype=np.intp)
        if len(self._index_cache) < 64:
            self._index_cache[names] = (ours, theirs)
        return ours, theirs

    def __call__(
        self,
        names: Sequence[str],
        position: Sequence[float],
        velocity: Sequence[float],
        effort: Sequence[float],
        stamp: float,
        now: float | None = None,
        received: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, dq, tau), each (nj,) float64 in our joint order, after merging this message
        (stamp in s; `now`: the caller's clock in the stamps' time base, None: no check of
        stamps ahead; `received`: receipt time for `oldest`, default `stamp`). Raises
        InputError; a refused message changes nothing."""
        n = len(names)
        for key, values in (("position", position), ("velocity", velocity), ("effort", effort)):
            if len(values) != n and not (key != "position" and len(values) == 0):
                raise InputError(
                    "lengths",
                    f"JointState rejected: {n} names but {len(values)} {key} values "
                    "(arrays must have one entry per name, or none for velocity and effort)",
                )
        ours, theirs = self.index(names)
        pos = np.asarray(position, dtype=float)[theirs]
        self._finite(pos, "position", names, theirs)
        vel = (
            np.asarray(velocity, dtype=float)[theirs]
            if len(velocity)
            else np.full(len(ours), np.nan)
        )
        if self.velocity == "measured":
            self._finite(vel, "velocity", names, theirs)
        elif self.velocity == "auto":  # NaN: not measured (filled below); inf: refused
            self._finite(vel[~np.isnan(vel)], "velocity", names, theirs[~np.isnan(vel)])
        if now is not None and stamp > now + self.max_ahead_s:
            raise InputError(
                "future",
                f"JointState rejected: stamp {stamp:.6f} s is {stamp - now:.3f} s ahead of "
                f"this node's clock (at most {self.max_ahead_s:g} s allowed)",
            )
        prev_stamp = self.stamp[ours]
        if (stamp <= prev_stamp).any():
            self._behind(stamp, float(prev_stamp.max()), stamp if received is None else received)
            prev_stamp = self.stamp[ours]
        if self.velocity == "auto":
            missing = np.isnan(vel)
            if missing.any():  # position-only: filtered difference of the positions
                dt = stamp - prev_stamp
                known = missing & self.seen[ours] & np.isfinite(dt) & (dt > 0)
                raw = np.zeros(len(ours))
                raw[known] = (pos[known] - self.q[ours][known]) / dt[known]
                alpha = np.zeros(len(ours))
                alpha[known] = 1.0 - np.exp(-dt[known] / self.velocity_tau_s)
                old = self.dq[ours]
                vel[missing] = (old + alpha * (raw - old))[missing]
        eff = np.asarray(effort, dtype=float)[theirs] if len(effort) else np.full(len(ours), np.nan)
        eff[~np.isfinite(eff)] = np.nan  # nobody reads effort to act on it: NaN means none
        self.q[ours], self.dq[ours], self.tau[ours] = pos, vel, eff
        self.stamp[ours] = stamp
        self.received[ours] = stamp if received is None else received
        self.seen[ours] = True
        self.behind.clear()
        if not self.seen.all():
            missing_names = [self.names[i] for i in np.flatnonzero(~self.seen)]
            raise InputError(
                "partial",
                f"JointState: missing joint name(s) {missing_names} so far (joints are merged "
                "by name across messages; waiting for the rest)",
            )
        return self.q.copy(), self.dq.copy(), self.tau.copy()

    def _finite(self, values: np.ndarray, key: str, names: Sequence[str], theirs) -> None:
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                "nonfinite",
                f"JointState rejected: {key} of joint {names[int(theirs[i])]!r} is {values[i]}",
            )

    def _behind(self, stamp: float, last: float, received: float) -> None:
        """A stamp not after its joints' last: out of order, or the clock stepped back (then
        nothing else is taken for `resync_s` while the new stamps advance)."""
        if self.behind and stamp > self.behind[-1][0]:
            self.behind.append((stamp, received))
        else:
            self.behind = [(stamp, received)]
        span = self.behind[-1][1] - self.behind[0][1]
        if len(self.behind) < self.resync_after or span < self.resync_s:
            raise InputError(
                "order",
                f"JointState rejected: stamp {stamp:.6f} s is not after the previous "
                f"{last:.6f} s (out of order or repeated; stamps that advance for "
                f"{self.resync_s:g} s with nothing else taken re-sync to a stepped-back clock)",
            )
        self.resyncs += 1
        self.last_resync = (
            f"joint state clock stepped back {last - stamp:.3f} s: re-synced to the new clock "
            f"after {len(self.behind)} advancing stamps (re-sync {self.resyncs})"
        )
        self.stamp[:] = -np.inf  # the velocity filter restarts from the next pair of stamps


class RateGate:
    """Token bucket: accepts on average `max_hz` messages per second, `burst` at once."""

    def __init__(self, max_hz: float, burst: int = 5, what: str = "messages"):
        if max_hz <= 0 or burst < 1:
            raise ValueError(f"max_hz={max_hz}, burst={burst}: expected max_hz > 0, burst >= 1")
        self.max_hz, self.burst, self.what = max_hz, burst, what
        self.tokens = float(burst)
        self.t: float | None = None
        self.dropped = 0

    def __call__(self, t: float) -> None:
        """Take one token at time `t` (s) or raise InputError("flood")."""
        if self.t is not None:
            self.tokens = min(self.burst, self.tokens + (t - self.t) * self.max_hz)
        self.t = t
        if self.tokens < 1.0:
            self.dropped += 1
            raise InputError(
                "flood",
                f"{self.what} arrive faster than {self.max_hz:g} Hz (a flood); dropped "
                f"{self.dropped} so far",
            )
        self.tokens -= 1.0


class RateGates:
    """One `RateGate` per source (a publisher's id): a flooding publisher is dropped
    without taking the other publishers' messages down with it."""

    def __init__(self, max_hz: float, burst: int = 5, what: str = "messages"):
        RateGate(max_hz, burst, what)  # validates the arguments
        self.max_hz, self.burst, self.what = max_hz, burst, what
        self.gates: dict[Hashable, RateGate] = {}

    def __call__(self, t: float, source: Hashable = None) -> None:
        gate = self.gates.get(source)
        if gate is None:
            gate = self.gates[source] = RateGate(self.max_hz, self.burst, self.what)
        gate(t)

    @property
    def dropped(self) -> int:
        return sum(g.dropped for g in self.gates.values())


def check_vector(values: Sequence[float], size: int, what: str) -> np.ndarray:
    """`values` as a float64 (size,) array, or InputError naming the size or bad entry."""
    a = np.asarray(values, dtype=float)
    if a.shape != (size,):
        raise InputError("lengths", f"{what} has {a.size} values, expected {size}")
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError("nonfinite", f"{what}: entry {i} is {a[i]}")
    return a
