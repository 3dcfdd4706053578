"""The batched-physics contract that every backend implements (CPU threads now, MuJoCo
Warp on a GPU next). Tasks and envs talk to this class only.

Shapes put the environment first. N = num_envs; nq, nv, nu, nbody, ngeom, nsensordata are
the MuJoCo model sizes (all envs of one backend share one kinematic tree).

Inputs
- `ctrl` (N, nu): actuator targets, written *in place* (`sim.ctrl[:] = a`) before `step()`.
  The tensor object never changes, so a GPU backend can capture `step` as a CUDA graph.

State (read-only views, refreshed in place by `step()` and `reset()`; never rebind or
write them: change state through `reset()`)
- `qpos` (N, nq), `qvel` (N, nv), `sensordata` (N, nsensordata), `time` (N,)
- `body_pos` (N, nbody, 3) world positions, `body_quat` (N, nbody, 4) world orientations
  (w, x, y, z), both consistent with `qpos`.
- `contact_force` (N, nbody, 3): net contact force on each body in the world frame (N), from
  the contacts of the last physics substep.
- `mocap_pos` (N, nmocap, 3): per-env positions of mocap bodies (targets, obstacles).
- `diverged` (N,) bool: the physics went unstable (NaN or huge accelerations) since the
  env's last reset. MuJoCo restarts such an env from its initial state; tasks should end
  the episode.

Sensors are evaluated by MuJoCo during a step at the state before that step's
integration, as on a real robot where a reading precedes the command it informs.

Per-env model parameters (for randomisation), each `(N, *shape)`:
`PARAMS` below lists the names, shapes and meanings. They are set between steps with
`set_params(name, values, env_ids)`, never rebuilt every step; derived constants (for
example inertia-dependent ones after a mass change) are recomputed by the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np
import torch


@dataclass(frozen=True)
class ParamInfo:
    size_attr: str  # model attribute giving the leading count (nbody, ngeom, nv, nu)
    width: int  # trailing width (0: scalar per element)
    doc: str


PARAMS: dict[str, ParamInfo] = {
    "body_mass": ParamInfo("nbody", 0, "mass of each body (kg); inertia scales with it"),
    "body_ipos": ParamInfo("nbody", 3, "centre of mass of each body in its frame (m)"),
    "geom_friction": ParamInfo("ngeom", 3, "sliding, torsional, rolling friction"),
    "dof_damping": ParamInfo("nv", 0, "passive joint damping (N m s/rad)"),
    "dof_armature": ParamInfo("nv", 0, "rotor inertia added to each dof (kg m^2)"),
    "dof_frictionloss": ParamInfo("nv", 0, "dry joint friction (N m)"),
    "actuator_kp": ParamInfo("nu", 0, "position gain of PD actuators (N m/rad)"),
    "actuator_kd": ParamInfo("nu", 0, "damping gain of PD actuators; gain of velocity ones"),
}


def param_shape(model: mujoco.MjModel, name: str) -> tuple[int, ...]:
    """Per-env shape of parameter `name` for `model` (raises on an unknown name)."""
    try:
        info = PARAMS[name]
    except KeyError:
        raise KeyError(
            f"unknown physics parameter {name!r}; expected one of {sorted(PARAMS)}"
        ) from None
    count = getattr(model, info.size_attr)
    return (count, info.width) if info.width else (count,)


class BatchedSim(ABC):
    """N copies of one MuJoCo model stepped together. See the module docstring."""

    model: mujoco.MjModel  # the nominal model (per-env parameters are applied on top)
    num_envs: int
    device: torch.device
    ctrl: torch.Tensor

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    # --- state --------------------------------------------------------------------------
    @property
    @abstractmethod
    def qpos(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def qvel(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def sensordata(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def time(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def body_pos(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def body_quat(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def contact_force(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def diverged(self) -> torch.Tensor: ...

    @property
    @abstractmethod
    def mocap_pos(self) -> torch.Tensor:
        """(N, nmocap, 3) positions of the mocap bodies (set through `reset`)."""

    # --- actions ------------------------------------------------------------------------
    @abstractmethod
    def step(self, substeps: int = 1) -> None:
        """Advance every env by `substeps` physics steps holding `ctrl` constant."""

    @abstractmethod
    def reset(
        self,
        env_ids: Sequence[int] | torch.Tensor | None = None,
        qpos: torch.Tensor | np.ndarray | None = None,
        qvel: torch.Tensor | np.ndarray | None = None,
        mocap_pos: torch.Tensor | np.ndarray | None = None,
    ) -> None:
        """Reset `env_ids` (all when None) to the "home" keyframe (or the model's
        qpos0), then overwrite qpos/qvel rows when given ((len(env_ids), nq|nv)) and the
        mocap bodies' positions ((len(env_ids), nmocap, 3): per-env targets, obstacles).
        ctrl of those envs goes back to the keyframe's targets. Other envs are untouched."""

    @abstractmethod
    def set_params(
        self,
        name: str,
        values: torch.Tensor | np.ndarray,
        env_ids: Sequence[int] | torch.Tensor | None = None,
    ) -> None:
        """Set per-env parameter `name` to `values` (len(env_ids), *param_shape)."""

    @abstractmethod
    def get_params(self, name: str) -> torch.Tensor:
        """Per-env values of parameter `name`, (N, *param_shape)."""

    def close(self) -> None:  # noqa: B027 (an optional hook: nothing to release by default)
        """Release threads or device memory."""

    # --- helpers shared by backends -----------------------------------------------------
    def _env_ids(self, env_ids: Sequence[int] | torch.Tensor | None) -> np.ndarray:
        if env_ids is None:
            return np.arange(self.num_envs)
        ids = np.asarray(
            env_ids.cpu().numpy() if isinstance(env_ids, torch.Tensor) else env_ids, dtype=np.int64
        ).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise IndexError(f"env_ids {ids.tolist()} outside [0, {self.num_envs})")
        return ids
