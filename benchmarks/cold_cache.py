"""How much slower the policy node's joint-state check runs when it starts cold.

    .venv/bin/python benchmarks/cold_cache.py

Times `JointStateCheck` (validation and reordering of a 7-joint state, the first stage of
every policy-node step) 200 times with different gaps before each call: back to back, after
a 2 ms and a 20 ms sleep (the node's idle time at 500 and 50 Hz), and after 20 ms of busy
waiting (the CPU kept running, so neither idle states nor wake-up are involved). Prints
JSON: p50 / p99 in microseconds per mode and each mode's p50 over back to back.
"""

from __future__ import annotations

import json
import os
import time
from array import array

import numpy as np

from xembody.real.validate import JointStateCheck


def main() -> None:
    names = [f"j{i}" for i in range(7)]
    check = JointStateCheck(names)
    pos, vel, effort = array("d", [0.1] * 7), array("d", [0.0] * 7), array("d")
    stamp = 0.0

    def gap(mode: str) -> None:
        if mode.startswith("sleep"):
            time.sleep(float(mode[5:]) / 1e3)
        elif mode.startswith("busy"):
            end = time.perf_counter() + float(mode[4:]) / 1e3
            while time.perf_counter() < end:
                pass

    results = {}
    for mode in ("back_to_back", "sleep2", "sleep20", "busy20"):
        times = []
        for _ in range(210):
            gap(mode)
            stamp += 1.0
            t = time.perf_counter_ns()
            check(names, pos, vel, effort, stamp)
            times.append(time.perf_counter_ns() - t)
        us = np.array(times[10:]) / 1e3
        results[mode] = {
            "p50_us": float(np.percentile(us, 50)),
            "p99_us": float(np.percentile(us, 99)),
        }
    base = results["back_to_back"]["p50_us"]
    for r in results.values():
        r["p50_over_back_to_back"] = r["p50_us"] / base
    print(
        json.dumps(
            {"benchmark": "cold_cache", "load_avg": os.getloadavg(), "results": results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
