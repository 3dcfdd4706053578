"""What the action adapter costs per control step, against the policy it serves.

    .venv/bin/python benchmarks/adapter_step.py [--steps 300]

For the reach arm (8 joints) and the velocity quadruped (12): collects a short nominal
session, fits a joint-wise model (timing does not depend on the fit), then times, on one
torch thread and in the same process, (a) the exported policy's ONNX inference and (b) one
`ActionAdapter` step with default settings (robot model and reference model both given), on
the same readings. Prints JSON: p50 / p99 in ms per body and the adapter's p50 over the
policy's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xembody.models.dynamics import DynamicsConfig, fit, load_frames
from xembody.models.exported import ExportedPolicy
from xembody.real.adapt import ActionAdapter
from xembody.real.collect import CollectConfig, collect
from xembody.real.proxy import RobotConfig

POLICIES = {"arm": "tests/assets/policies/reach", "quadruped": "tests/assets/policies/velocity"}


def timed(fn, steps: int) -> np.ndarray:
    out = []
    for i in range(steps):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return 1e3 * np.asarray(out[10:])  # ms, warm-up dropped


def measure(body: str, folder: str, tmp: Path, steps: int) -> dict:
    robot = RobotConfig(body=body, proxy=None)
    collect(robot, CollectConfig(minutes=0.2), tmp / f"{body}.zarr")
    episodes, _ = load_frames(tmp / f"{body}.zarr")
    emb = robot.embodiment()
    model = fit("jointwise", emb, episodes, DynamicsConfig(steps=50))
    adapter = ActionAdapter(model, model)
    policy = ExportedPolicy.load(folder)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(steps, policy.obs_dim)).astype(np.float32)
    q = emb.default_pose + 0.01 * rng.normal(size=(steps, emb.num_actions))
    pol = timed(lambda i: policy(obs[i]), steps)
    ada = timed(lambda i: adapter(q[i], np.zeros_like(q[i]), q[i] + 0.02), steps)
    return {
        "joints": emb.num_actions,
        "policy_ms": {"p50": float(np.median(pol)), "p99": float(np.percentile(pol, 99))},
        "adapter_ms": {"p50": float(np.median(ada)), "p99": float(np.percentile(ada, 99))},
        "adapter_over_policy_p50": float(np.median(ada) / np.median(pol)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        result = {b: measure(b, f, Path(tmp), args.steps) for b, f in POLICIES.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
