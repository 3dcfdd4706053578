"""Several bodies stepped together: one `BatchedSim` group per kinematic tree, one flat
env index over all of them.

Envs `offsets[g] <= i < offsets[g + 1]` belong to group `g` (body g). Per-body arrays have
different widths (nq, nu differ), so the flat views are zero-padded to the widest body with
a mask: exactly what a cross-embodiment policy with padded per-joint tokens consumes.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np
import torch

from .backend import BatchedSim


class MultiBodySim:
    def __init__(
        self,
        models: Sequence[mujoco.MjModel],
        envs_per_body: int | Sequence[int],
        *,
        backend: str = "cpu",
        **backend_kwargs,
    ):
        from . import make_sim  # late import: the factory lives in the package

        if not models:
            raise ValueError("MultiBodySim needs at least one model")
        counts = (
            [envs_per_body] * len(models) if isinstance(envs_per_body, int) else list(envs_per_body)
        )
        if len(counts) != len(models):
            raise ValueError(f"{len(models)} models but {len(counts)} env counts")
        self.groups: list[BatchedSim] = [
            make_sim(m, n, backend, **backend_kwargs) for m, n in zip(models, counts, strict=True)
        ]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        self.num_envs = int(self.offsets[-1])
        self.group_ids = torch.from_numpy(np.repeat(np.arange(len(models)), counts))
        self.max_nu = max(m.nu for m in models)
        self.max_nq = max(m.nq for m in models)
        self.max_nv = max(m.nv for m in models)
        self.action_mask = torch.zeros(self.num_envs, self.max_nu, dtype=torch.bool)
        for g, m in enumerate(models):
            self.action_mask[self.offsets[g] : self.offsets[g + 1], : m.nu] = True

    def group_slice(self, g: int) -> slice:
        return slice(int(self.offsets[g]), int(self.offsets[g + 1]))

    def split(self, env_ids: Sequence[int] | torch.Tensor | None) -> list[tuple[int, np.ndarray]]:
        """Flat env ids -> [(group, local ids)] for the groups that have any of them."""
        if env_ids is None:
            return [(g, np.arange(sim.num_envs)) for g, sim in enumerate(self.groups)]
        ids = np.asarray(
            env_ids.cpu().numpy() if isinstance(env_ids, torch.Tensor) else env_ids, np.int64
        ).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise IndexError(f"env_ids {ids.tolist()} outside [0, {self.num_envs})")
        group = np.searchsorted(self.offsets, ids, side="right") - 1
        return [(int(g), ids[group == g] - self.offsets[g]) for g in np.unique(group)]

    def substeps_for(self, control_dt: float) -> list[int]:
        """Physics substeps per control period for each group (bodies may differ in dt)."""
        steps = [max(1, round(control_dt / sim.timestep)) for sim in self.groups]
        for n, sim in zip(steps, self.groups, strict=True):
            if abs(n * sim.timestep - control_dt) > 1e-6:
                raise ValueError(
                    f"control_dt={control_dt} is not a multiple of timestep {sim.timestep}"
                )
        return steps

    def step(self, substeps: int | Sequence[int] = 1) -> None:
        """Step every group; `substeps` is one count for all or one per group."""
        counts = [substeps] * len(self.groups) if isinstance(substeps, int) else list(substeps)
        if len(counts) != len(self.groups):
            raise ValueError(f"{len(counts)} substep counts for {len(self.groups)} groups")
        for sim, n in zip(self.groups, counts, strict=True):
            sim.step(n)

    def reset(self, env_ids: Sequence[int] | torch.Tensor | None = None) -> None:
        for g, local in self.split(env_ids):
            self.groups[g].reset(local)

    def set_ctrl(self, actions: torch.Tensor) -> None:
        """Write padded actions (num_envs, max_nu) into every group's ctrl."""
        if tuple(actions.shape) != (self.num_envs, self.max_nu):
            raise ValueError(
                f"actions have shape {tuple(actions.shape)}, "
                f"expected {(self.num_envs, self.max_nu)}"
            )
        for g, sim in enumerate(self.groups):
            sim.ctrl[:] = actions[self.group_slice(g), : sim.ctrl.shape[1]]

    def padded(self, field: str) -> torch.Tensor:
        """`qpos`, `qvel` or `ctrl` of every env, zero-padded to the widest body."""
        if field not in ("qpos", "qvel", "ctrl"):
            raise ValueError(f"field={field!r}, expected 'qpos', 'qvel' or 'ctrl'")
        width = {"qpos": self.max_nq, "qvel": self.max_nv, "ctrl": self.max_nu}[field]
        out = torch.zeros(self.num_envs, width, dtype=torch.float64)
        for g, sim in enumerate(self.groups):
            x = getattr(sim, field)
            out[self.group_slice(g), : x.shape[1]] = x.to(out.dtype)
        return out

    def close(self) -> None:
        for sim in self.groups:
            sim.close()
