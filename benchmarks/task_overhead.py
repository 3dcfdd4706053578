"""Task-side cost of `BodyEnv.step`: everything except the physics (sim.step, sim.reset).

For each body, `BodyEnv` runs the velocity task on N envs with zero actions; the script
times `--steps` control steps and, inside them, the time spent in the sim's `step` and
`reset` (wrapped with timers), and prints one JSON line per body: total seconds,
physics seconds, task-side seconds (the rest: observations, rewards, terminations,
randomisation, resets' bookkeeping) and the resets per step (envs restarted / steps).
`torch_ops_per_step` counts the torch operators one control step dispatches (5 steps
before the timed ones, counted with a TorchDispatchMode; views included; steps with resets
dispatch more) and `host_reads_per_step` those that read a value back to Python (`.item()`,
`bool(t)`) or copy a tensor from the device to the host (`.cpu()`): on a GPU each op is a
kernel launch or a sync, the task side's cost that CUDA graphs remove. On a Warp backend
`warp_launches_per_step` counts, over the timed steps, the Warp launches a CUDA device is
sent outside the backend's CUDA graphs (each graph replay counted as one; see
`_CountLaunches`), and `warp_launches_per_reset` those of one reset of six envs (mass and
friction randomisation, keyframe, forward pass): on Warp's CPU device too, where it is a
count, not a time.
`--profile` also prints the 15 costliest task-side functions (cProfile, cumulative).

    python benchmarks/task_overhead.py --num-envs 4096 --steps 20       # CPU backend
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from xembody.sim import tasks
from xembody.sim.env import BodyEnv

TASK = "velocity"


def _body(name: str, seed: int):
    from xembody.sim import bodies

    if name == "humanoid":  # as benchmarks/gpu_throughput.py: the largest generated humanoid
        return bodies.get("humanoid").sample(seed, arm_joints=(4, 4))
    return bodies.get(name).sample(seed)


class _Timed:
    """Accumulates wall time and call counts of one bound method."""

    def __init__(self, fn, count_envs: bool = False):
        self.fn, self.seconds, self.envs, self.count_envs = fn, 0.0, 0, count_envs
        self.cuda = fn.__self__.device.type == "cuda"

    def __call__(self, *args, **kwargs):
        if self.cuda:  # charge queued task-side work to the task, not to the physics
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = self.fn(*args, **kwargs)
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t
        if self.count_envs:
            ids = args[0] if args else kwargs.get("env_ids")
            self.envs += self.fn.__self__.num_envs if ids is None else len(ids)
        return out


class _CountOps(TorchDispatchMode):
    """Counts the torch operators dispatched inside it, and the host reads among them."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = self.host_reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        self.host_reads += func is torch.ops.aten._local_scalar_dense.default or (
            func is torch.ops.aten._to_copy.default
            and args[0].device.type != "cpu"
            and (kwargs or {}).get("device") == torch.device("cpu")
        )
        return func(*args, **(kwargs or {}))


class _CountLaunches:
    """Counts the Warp kernel launches a CUDA device would be sent: `wp.launch` calls
    outside the parts `WarpSim` captures as CUDA graphs, plus one per graph replay. On
    Warp's CPU device nothing is captured, so each call of a captured part counts as the one
    replay it would be on CUDA. Memsets and copies are not counted."""

    _CAPTURED = (("WarpSim", "_advance"), ("_Scratch", "_forward"), ("_Scratch", "_set_const"))

    def __init__(self) -> None:
        self.launches, self._depth, self._saved = 0, 0, []

    def __enter__(self):
        import warp as wp

        from xembody.sim.physics import warp as backend

        def eager(fn):
            def launch(*args, **kwargs):
                self.launches += self._depth == 0
                return fn(*args, **kwargs)

            return launch

        def captured(fn):
            def part(*args, **kwargs):
                self.launches += self._depth == 0 and not wp.get_device().is_capturing
                self._depth += 1
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._depth -= 1

            return part

        patches = [(wp, f, eager) for f in ("launch", "launch_tiled", "capture_launch")]
        patches += [(getattr(backend, c), f, captured) for c, f in self._CAPTURED]
        for owner, attr, wrap in patches:
            self._saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, wrap(getattr(owner, attr)))
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, fn in reversed(self._saved):
            setattr(owner, attr, fn)


def measure(name: str, n: int, steps: int, backend: str, seed: int, profile: bool) -> dict:
    emb = _body(name, seed)
    env = BodyEnv(tasks.make_task(TASK, emb, tasks.make_config(TASK)), n, backend=backend)
    zeros = torch.zeros(n, env.num_actions, device=env.device)
    env.step(zeros)  # warm-up (kernels, first resets)
    with _CountOps() as count:
        for _ in range(5):
            env.step(zeros)
    warp = backend != "cpu"
    if warp:  # one reset of a few envs: randomisation (masses: set_const), keyframe, forward
        with _CountLaunches() as reset_launches:
            env._reset_envs(torch.arange(min(6, n), device=env.device))
    step, reset = _Timed(env.sim.step), _Timed(env.sim.reset, count_envs=True)
    env.sim.step, env.sim.reset = step, reset
    prof = cProfile.Profile() if profile else None
    launches = _CountLaunches() if warp else contextlib.nullcontext()
    t = time.perf_counter()
    if prof:
        prof.enable()
    with launches:
        for _ in range(steps):
            env.step(zeros)
    if env.device.type == "cuda":
        torch.cuda.synchronize()
    if prof:
        prof.disable()
    total = time.perf_counter() - t
    env.close()
    physics = step.seconds + reset.seconds
    row = dict(
        body=emb.name,
        backend=backend,
        num_envs=n,
        steps=steps,
        total_s=round(total, 3),
        sim_step_s=round(step.seconds, 3),
        sim_reset_s=round(reset.seconds, 3),
        task_side_s=round(total - physics, 3),
        task_side_ms_per_step=round(1e3 * (total - physics) / steps, 2),
        resets_per_step=round(reset.envs / steps, 1),
        torch_ops_per_step=round(count.ops / 5, 1),
        host_reads_per_step=round(count.host_reads / 5, 1),
    )
    if warp:  # over the timed steps (with their resets)
        row["warp_launches_per_step"] = round(launches.launches / steps, 1)
        row["warp_launches_per_reset"] = reset_launches.launches
    print(json.dumps(row), flush=True)
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=4096)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bodies", nargs="+", default=["humanoid", "quadruped"])
    p.add_argument("--backend", default="cpu", help="cpu, warp:cpu, gpu")
    p.add_argument("--seed", type=int, default=0, help="body seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.bodies:
        measure(name, args.num_envs, args.steps, args.backend, args.seed, args.profile)


if __name__ == "__main__":
    main()
