"""Throughput of MuJoCo Warp (GPU) for the locomotion task, next to a bare MuJoCo Warp loop.

For each body (humanoid, quadruped) and env count N, in one process and on one device, the
script times four loops of `--steps` control steps (each `decimation` physics steps, the
task's control period), after a warm-up that compiles kernels and captures CUDA graphs:

- `mujoco_warp`: the bare library, `mjw.step` x decimation captured as one CUDA graph
  (plain launches on Warp's CPU device), same model, N and contact/constraint buffers;
- `warp`: the backend (`WarpSim.step`): the same plus the solver cold start, kinematics,
  per-body contact forces, the health check and one small device-to-host read;
- `env`: `BodyEnv` on the "gpu" backend (Warp on CUDA; the env and the task's
  observations, rewards and resets run in torch on the same GPU), zero actions;
- `env` with_policy: the same with an MLP actor (the task's PPO layer sizes) choosing the
  actions on the policy device (CUDA when present) from the observations.

Each prints one JSON line: backend, device, task, body, num_envs, env_steps_per_s
(control steps x N / s), physics_steps_per_s (x decimation), with_policy, and
fraction_of_bare (env_steps_per_s / the bare loop's, same body and N: issue 23's figure).
The env lines also give resets_per_step (envs reset by the env, pushes excluded).

The humanoid is the largest one the generator makes (`arm_joints=4`: 20 actuated hinges,
nv 26, ~1.3-1.6 m), the closest to a Unitree G1 (23-29 actuated joints) this repo has;
the issue's target is >= 200k env-steps/s for it at N = 4096 on one H100.

    python benchmarks/gpu_throughput.py                          # GPU: N = 1024 4096 16384
    python benchmarks/gpu_throughput.py --device cpu --num-envs 8 --steps 5   # smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import mujoco
import numpy as np
import torch
import warp as wp

from xembody.models.ppo import PPOConfig
from xembody.sim import bodies, tasks
from xembody.sim.env import BodyEnv
from xembody.sim.physics.warp import WarpSim, buffer_sizes

TASK = "velocity"


def body_for(name: str, seed: int):
    if name == "humanoid":  # the largest generated humanoid (see the module docstring)
        return bodies.get("humanoid").sample(seed, arm_joints=(4, 4))
    return bodies.get(name).sample(seed)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        wp.synchronize_device(device)
        torch.cuda.synchronize()


def bare_mujoco_warp(model: mujoco.MjModel, n: int, decimation: int, steps: int, device: str):
    import mujoco_warp as mjw

    nconmax, njmax = buffer_sizes(model)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    with wp.ScopedDevice(device):
        m = mjw.put_model(model)
        d = mjw.put_data(model, data, nworld=n, nconmax=nconmax, njmax=njmax)

        def control_step():
            for _ in range(decimation):
                mjw.step(m, d)

        control_step()  # compile
        if wp.get_device(device).is_cuda:
            with wp.ScopedCapture() as cap:
                control_step()
            run = lambda: wp.capture_launch(cap.graph)  # noqa: E731
        else:
            run = control_step
        run()
        _sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            run()
        _sync(device)
        return time.perf_counter() - t


def backend_loop(model: mujoco.MjModel, n: int, decimation: int, steps: int, device: str):
    sim = WarpSim(model, n, device=device)
    sim.step(decimation)  # compile, capture
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        sim.step(decimation)
    _sync(device)
    return time.perf_counter() - t


def policy_for(env: BodyEnv, device: str) -> torch.nn.Module:
    dims = PPOConfig(**tasks.get(TASK).ppo).hidden_dims
    sizes = [env.get_observations()["policy"].shape[1], *dims]
    layers: list[torch.nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ELU()]
    layers.append(torch.nn.Linear(sizes[-1], env.num_actions))
    return torch.nn.Sequential(*layers).to(device)


def env_loop(emb, n: int, steps: int, device: str, with_policy: bool, policy_device: str):
    backend = "gpu" if device.startswith("cuda") else "warp:cpu"
    env = BodyEnv(tasks.make_task(TASK, emb, tasks.make_config(TASK)), n, backend=backend)
    policy = policy_for(env, policy_device) if with_policy else None
    zeros = torch.zeros(n, env.num_actions, device=env.device)
    obs = env.get_observations()

    def act(obs):
        if policy is None:
            return zeros
        with torch.inference_mode():
            return policy(obs["policy"].to(policy_device)).to(env.device)

    obs, *_ = env.step(act(obs))  # compile, capture
    _sync(device)
    resets = 0
    t = time.perf_counter()
    for _ in range(steps):
        obs, _, dones, _ = env.step(act(obs))
        resets += dones.sum()  # a device tensor: read once after the loop
    _sync(device)
    elapsed = time.perf_counter() - t
    env.close()
    return elapsed, float(resets) / steps


def emit(backend: str, row: dict, env_rate: float, decimation: int, bare: float, **extra):
    """Print one result line (rates per second; `bare`: the bare loop's env-steps/s)."""
    out = dict(
        backend=backend,
        **row,
        env_steps_per_s=round(env_rate),
        physics_steps_per_s=round(env_rate * decimation),
        fraction_of_bare=round(env_rate / bare, 3),
        with_policy=extra.pop("with_policy", False),
    )
    print(json.dumps({**out, **extra}), flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="Warp device: cuda, cuda:<i> or cpu")
    p.add_argument("--num-envs", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--bodies", nargs="+", default=["humanoid", "quadruped"])
    p.add_argument("--steps", type=int, default=200, help="timed control steps per loop")
    p.add_argument("--seed", type=int, default=0, help="body seed")
    p.add_argument("--skip-env", action="store_true", help="physics loops only")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not wp.is_cuda_available():
        raise SystemExit(f"--device {args.device}: Warp finds no CUDA device; use --device cpu")
    policy_device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in args.bodies:
        emb = body_for(name, args.seed)
        model = emb.compile()
        decimation = round(1.0 / tasks.make_config(TASK).control_hz / model.opt.timestep)
        for n in args.num_envs:
            row = dict(device=args.device, task=TASK, body=emb.name, num_envs=n)
            per = n * args.steps  # env steps per timed loop
            bare = per / bare_mujoco_warp(model, n, decimation, args.steps, args.device)
            emit("mujoco_warp", row, bare, decimation, bare)
            sec = backend_loop(model, n, decimation, args.steps, args.device)
            emit("warp", row, per / sec, decimation, bare)
            if args.skip_env:
                continue
            for with_policy in (False, True):
                sec, resets = env_loop(emb, n, args.steps, args.device, with_policy, policy_device)
                extra = {"policy_device": policy_device} if with_policy else {}
                emit("env", row, per / sec, decimation, bare, with_policy=with_policy,
                     resets_per_step=round(resets, 2), **extra)  # fmt: skip


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
