"""Checks on what arrives from the outside (ROS-free): joint states and command vectors.

Every check raises `InputError` (a ValueError) whose message names the problem, so a node
logs it and keeps running with the last good input:

- `JointStateCheck(names)(names, q, dq, tau, stamp)` -> (q, dq, tau) in *our* joint order,
  indexed by name (a /joint_states message's order is not guaranteed): mismatched array
  lengths, unknown, missing or duplicate names, NaN/inf values and out-of-order stamps are
  rejected. Empty velocity/effort arrays are allowed (ROS allows them) and read as NaN-free
  zeros only where `require_velocity` is off.
- `RateGate(max_hz)`: a token bucket; a flood beyond `max_hz` (with a burst of `burst`
  messages) is rejected message by message.
- `check_vector(values, size, what)`: a command vector of the right size, all finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class InputError(ValueError):
    """Bad input from outside; `kind` is a short tag for counters and throttled logs."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class JointStateCheck:
    def __init__(self, names: Sequence[str], *, require_velocity: bool = True):
        self.names = tuple(names)
        self.require_velocity = require_velocity
        self.last_stamp: float | None = None
        self._index_cache: tuple[tuple[str, ...], np.ndarray] | None = None

    def index(self, names: Sequence[str]) -> np.ndarray:
        """`idx` with `values[idx]` in our joint order, for a message's `names`."""
        names = tuple(names)
        if self._index_cache and self._index_cache[0] == names:
            return self._index_cache[1]
        ours = set(self.names)
        unknown = [n for n in names if n not in ours]
        missing = [n for n in self.names if n not in names]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if unknown or missing or dupes:
            parts = [
                f"unknown joint name(s) {unknown}" if unknown else "",
                f"missing joint name(s) {missing}" if missing else "",
                f"duplicate joint name(s) {dupes}" if dupes else "",
            ]
            raise InputError(
                "names",
                f"JointState rejected: {'; '.join(p for p in parts if p)} "
                f"(expected the joints {list(self.names)})",
            )
        idx = np.array([names.index(n) for n in self.names], dtype=np.intp)
        self._index_cache = (names, idx)
        return idx

    def __call__(
        self,
        names: Sequence[str],
        position: Sequence[float],
        velocity: Sequence[float],
        effort: Sequence[float],
        stamp: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, dq, tau), each (nj,) float64 in our joint order; raises InputError."""
        n = len(names)
        arrays = {"position": position, "velocity": velocity, "effort": effort}
        for key, values in arrays.items():
            optional = key == "effort" or (key == "velocity" and not self.require_velocity)
            if len(values) != n and not (optional and len(values) == 0):
                raise InputError(
                    "lengths",
                    f"JointState rejected: {n} names but {len(values)} {key} values "
                    "(arrays must have one entry per name)",
                )
        idx = self.index(names)
        out = []
        for key, values in arrays.items():
            a = np.asarray(values, dtype=float) if len(values) else np.zeros(n)
            bad = ~np.isfinite(a)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(
                    "nonfinite", f"JointState rejected: {key} of joint {names[i]!r} is {a[i]}"
                )
            out.append(a[idx])
        if self.last_stamp is not None and stamp <= self.last_stamp:
            raise InputError(
                "order",
                f"JointState rejected: stamp {stamp:.6f} s is not after the previous "
                f"{self.last_stamp:.6f} s (out of order or repeated)",
            )
        self.last_stamp = stamp
        return out[0], out[1], out[2]


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
