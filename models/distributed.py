"""Multi-process PPO with rsl-rl's own distributed support (torch.distributed).

rsl-rl 5.5 reads WORLD_SIZE / RANK / LOCAL_RANK, broadcasts rank 0's weights at the start
of `learn`, all-reduces gradients (and the KL of the adaptive learning rate) every update,
and lets rank 0 alone write logs and checkpoints. It hard-codes the NCCL backend and
`cuda:<local_rank>`; `DistributedRunner` only swaps in gloo when the policy runs on the
CPU. Each process owns its envs (`--num-envs` is per process) and seed (seed + rank).

Launch: `xembody train ... --nproc N` spawns N local processes (`spawn_train`); torchrun
(`torchrun --nproc-per-node N -m xembody.cli train ...`, or with a rendezvous endpoint
across machines) sets the same variables and works unchanged.

Every rank appends one line per PPO iteration to `<run>/ranks/rank<r>.jsonl`:
{"it", "params_sha1" (actor and critic weights after the update), "mean_reward" (mean
per-step reward of this rank's rollout)}; identical hashes across ranks show that the
replicas stayed in sync.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rsl_rl.runners import OnPolicyRunner


def world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) of this process from torch.distributed's variables."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def init(device: str) -> None:
    """Join the process group (gloo on a CPU, NCCL on CUDA) when WORLD_SIZE > 1."""
    rank, size, _ = world()
    if size > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=size)


def agree(value: Any) -> Any:
    """Rank 0's `value` on every rank (identity without a process group)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def params_digest(*modules: torch.nn.Module) -> str:
    h = hashlib.sha1()
    for module in modules:
        for t in module.state_dict().values():
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class DistributedRunner(OnPolicyRunner):
    """rsl-rl's OnPolicyRunner with gloo for CPU ranks and a per-iteration sync record."""

    def __init__(self, env, train_cfg: dict, log_dir: str | None = None, device: str = "cpu"):
        super().__init__(env, train_cfg, log_dir=log_dir, device=device)
        rank = self.gpu_global_rank
        self.sync_log = Path(log_dir) / "ranks" / f"rank{rank}.jsonl" if log_dir else None
        update = self.alg.update

        def update_and_record() -> dict:
            reward = float(self.alg.storage.rewards.mean())
            out = update()
            if self.sync_log is not None:
                self.sync_log.parent.mkdir(parents=True, exist_ok=True)
                digest = params_digest(self.alg.actor, self.alg.critic)
                line = {"it": self._it, "params_sha1": digest, "mean_reward": reward}
                with self.sync_log.open("a") as f:
                    f.write(json.dumps(line) + "\n")
            self._it += 1
            return out

        self._it = 0
        self.alg.update = update_and_record

    def learn(self, num_learning_iterations: int, init_at_random_ep_len: bool = False) -> None:
        self._it = self.current_learning_iteration
        super().learn(num_learning_iterations, init_at_random_ep_len)
        # `train` calls learn() once per chunk of iterations; rsl-rl opens a new TensorBoard
        # writer (and copies the code state) at every call. One per run is enough.
        self.logger.init_logging_writer = lambda: None

    def close_writer(self) -> None:
        """Flush and close the TensorBoard writer (rsl-rl leaves it to the process's end)."""
        writer = getattr(self.logger, "writer", None)
        if writer is not None and hasattr(writer, "close"):
            writer.close()

    def _configure_multi_gpu(self) -> None:
        rank, size, local = world()
        if size == 1 or str(self.device).startswith("cuda"):
            if size > 1 and dist.is_initialized():  # joined early by train(): skip re-init
                self._set_ranks(rank, size, local)
                torch.cuda.set_device(local)
                return
            super()._configure_multi_gpu()  # NCCL and cuda:<local_rank>, as rsl-rl does it
            return
        init("cpu")
        self._set_ranks(rank, size, local)

    def _set_ranks(self, rank: int, size: int, local: int) -> None:
        self.gpu_world_size, self.is_distributed = size, True
        self.gpu_global_rank, self.gpu_local_rank = rank, local
        self.cfg["multi_gpu"] = {"global_rank": rank, "local_rank": local, "world_size": size}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_train(cfg, task_overrides: dict | None) -> Path:
    """Run `models.training.train(cfg)` in `cfg.nproc` local processes; the run folder."""
    import dataclasses
    import time

    import torch.multiprocessing as mp

    run_name = cfg.run_name or time.strftime("%Y%m%d-%H%M%S")
    cfg = dataclasses.replace(cfg, run_name=run_name)
    port = free_port()
    mp.start_processes(
        _worker, args=(cfg, task_overrides, port), nprocs=cfg.nproc, start_method="spawn"
    )
    found = sorted(Path(cfg.log_root).glob(f"*/{run_name}"))
    if len(found) != 1:
        raise FileNotFoundError(f"no single run folder {run_name!r} under {cfg.log_root}")
    return found[0]


def _worker(rank: int, cfg, task_overrides: dict | None, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(cfg.nproc),
        RANK=str(rank), LOCAL_RANK=str(rank),
    )  # fmt: skip
    from xembody.models.training import train

    try:
        train(cfg, task_overrides)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
