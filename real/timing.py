"""Loop-timing monitor: measured rate, period jitter and missed deadlines of a control loop.

    timer = LoopTimer(period_s=0.02)
    timer.tick(time.monotonic())       # once per control step
    timer.report()   # {"rate_hz", "period_mean_ms", "jitter_ms" (std), "jitter_p99_ms",
                     #  "missed" (periods over 1.5x nominal), "ticks"}

The statistics cover the last `window` periods.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class LoopTimer:
    def __init__(self, period_s: float, window: int = 1000, miss_factor: float = 1.5):
        if period_s <= 0:
            raise ValueError(f"period_s={period_s}, expected > 0")
        if window < 2:
            raise ValueError(f"window={window}, expected >= 2")
        self.period_s = period_s
        self.miss_factor = miss_factor
        self.periods: deque[float] = deque(maxlen=window)
        self.last: float | None = None
        self.ticks = 0
        self.missed = 0

    def tick(self, t: float) -> float | None:
        """Record a loop iteration at time `t` (s); returns the period since the last one."""
        self.ticks += 1
        period = None if self.last is None else t - self.last
        self.last = t
        if period is not None:
            self.periods.append(period)
            if period > self.miss_factor * self.period_s:
                self.missed += 1
        return period

    def report(self) -> dict[str, float]:
        p = np.asarray(self.periods)
        if len(p) == 0:
            return {"ticks": self.ticks, "missed": self.missed}
        dev = np.abs(p - self.period_s)
        return {
            "rate_hz": float(1.0 / p.mean()),
            "period_mean_ms": float(1e3 * p.mean()),
            "jitter_ms": float(1e3 * p.std()),
            "jitter_p99_ms": float(1e3 * np.percentile(dev, 99)),
            "missed": self.missed,
            "ticks": self.ticks,
        }
