"""Batched physics backends behind one contract (`backend.BatchedSim`).

`make_sim(model, num_envs, backend="cpu")` builds one; tasks never import a backend module
directly. "warp" is MuJoCo Warp with its tensors on its device (`device="cuda"` by
default; "warp:cpu" / "warp:cuda:1" name the device in the backend string); "gpu" is
the same on CUDA only (an error elsewhere). `BodyEnv` and its tasks keep their tensors on
the sim's device, so nothing is mirrored to the host. The warp module is imported only when
asked for, so the CPU backend works without mujoco-warp installed.
"""

from __future__ import annotations

from collections.abc import Callable

import mujoco

from .backend import PARAMS, BatchedSim, param_shape
from .cpu import CpuSim
from .multibody import MultiBodySim


def _warp(model: mujoco.MjModel, num_envs: int, **kwargs) -> BatchedSim:
    from .warp import WarpSim

    return WarpSim(model, num_envs, **kwargs)


def _gpu(model: mujoco.MjModel, num_envs: int, **kwargs) -> BatchedSim:
    device = kwargs.pop("device", "cuda")
    if not str(device).startswith("cuda"):
        raise ValueError(f"backend='gpu' runs on CUDA, got device={device!r}; use 'warp'")
    return _warp(model, num_envs, device=device, **kwargs)


_BACKENDS: dict[str, Callable[..., BatchedSim]] = {"cpu": CpuSim, "warp": _warp, "gpu": _gpu}


def make_sim(model: mujoco.MjModel, num_envs: int, backend: str = "cpu", **kwargs) -> BatchedSim:
    """N envs of `model` on `backend` ("cpu", "warp[:device]", "gpu"); kwargs go to the
    backend (cpu: num_threads=...; warp: device=, nconmax=, njmax=, on_overflow=)."""
    backend, _, device = backend.partition(":")  # "warp:cpu", "warp:cuda:0"
    if device:
        kwargs["device"] = device
    try:
        cls = _BACKENDS[backend]
    except KeyError:
        raise ValueError(
            f"unknown physics backend {backend!r}; expected one of {sorted(_BACKENDS)}"
        ) from None
    return cls(model, num_envs, **kwargs)


__all__ = ["PARAMS", "BatchedSim", "CpuSim", "MultiBodySim", "make_sim", "param_shape"]
