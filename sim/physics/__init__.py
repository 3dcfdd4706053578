"""Batched physics backends behind one contract (`backend.BatchedSim`).

`make_sim(model, num_envs, backend="cpu")` builds one; tasks never import a backend module
directly. The GPU backend (MuJoCo Warp) registers itself here as "gpu".
"""

from __future__ import annotations

from collections.abc import Callable

import mujoco

from .backend import PARAMS, BatchedSim, param_shape
from .cpu import CpuSim
from .multibody import MultiBodySim

_BACKENDS: dict[str, Callable[..., BatchedSim]] = {"cpu": CpuSim}


def make_sim(model: mujoco.MjModel, num_envs: int, backend: str = "cpu", **kwargs) -> BatchedSim:
    """N envs of `model` on `backend` ("cpu"); kwargs go to the backend (num_threads=...)."""
    try:
        cls = _BACKENDS[backend]
    except KeyError:
        raise ValueError(
            f"unknown physics backend {backend!r}; expected one of {sorted(_BACKENDS)}"
        ) from None
    return cls(model, num_envs, **kwargs)


__all__ = ["PARAMS", "BatchedSim", "CpuSim", "MultiBodySim", "make_sim", "param_shape"]
