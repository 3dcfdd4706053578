"""A device-resident sim seen from the CPU: `HostMirror(sim)`.

The tasks and `BodyEnv` keep their own state in CPU tensors. To run them on MuJoCo Warp on
a GPU, this wrapper keeps CPU copies of `ctrl` and of every state tensor: `step()` sends
ctrl to the device once, steps there (a CUDA graph), and copies the state back once
(pinned buffers, one transfer per field per control step). Resets and parameters go
through to the wrapped sim; what the task sees is the same as from a CPU backend.
"""

from __future__ import annotations

import torch

from .backend import BatchedSim

_STATE = ("qpos", "qvel", "sensordata", "time", "body_pos", "body_quat", "contact_force",
          "diverged", "mocap_pos")  # fmt: skip


class HostMirror(BatchedSim):
    def __init__(self, sim: BatchedSim):
        self.inner, self.model, self.num_envs = sim, sim.model, sim.num_envs
        self.device = torch.device("cpu")
        pin = sim.device.type == "cuda"
        host = lambda x: torch.empty(x.shape, dtype=x.dtype, pin_memory=pin)  # noqa: E731
        self.ctrl = host(sim.ctrl)
        self._host = {name: host(getattr(sim, name)) for name in _STATE}
        self._pull()
        self.ctrl.copy_(sim.ctrl)

    def _pull(self) -> None:
        for name, buf in self._host.items():
            buf.copy_(getattr(self.inner, name), non_blocking=True)
        if self.inner.device.type == "cuda":
            torch.cuda.current_stream(self.inner.device).synchronize()

    qpos = property(lambda self: self._host["qpos"])
    qvel = property(lambda self: self._host["qvel"])
    sensordata = property(lambda self: self._host["sensordata"])
    time = property(lambda self: self._host["time"])
    body_pos = property(lambda self: self._host["body_pos"])
    body_quat = property(lambda self: self._host["body_quat"])
    contact_force = property(lambda self: self._host["contact_force"])
    diverged = property(lambda self: self._host["diverged"])
    mocap_pos = property(lambda self: self._host["mocap_pos"])

    def step(self, substeps: int = 1) -> None:
        self.inner.ctrl.copy_(self.ctrl, non_blocking=True)
        self.inner.step(substeps)
        self._pull()

    def reset(self, env_ids=None, qpos=None, qvel=None, mocap_pos=None) -> None:
        ids = self._env_ids(env_ids)
        self.inner.reset(ids, qpos, qvel, mocap_pos)
        idx = torch.as_tensor(ids)
        self.ctrl[idx] = self.inner.ctrl[idx.to(self.inner.device)].cpu()
        self._pull()

    def set_params(self, name: str, values, env_ids=None) -> None:
        self.inner.set_params(name, values, env_ids)

    def get_params(self, name: str) -> torch.Tensor:
        return self.inner.get_params(name).cpu()

    def close(self) -> None:
        self.inner.close()
