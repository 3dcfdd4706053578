"""CPU backend: N native MuJoCo `MjData`, stepped by a pool of threads.

`mj_step` releases the GIL, so threads step disjoint, contiguous chunks of envs in
parallel. Each env keeps its own `MjData` (warm starts, contacts and every derived field
survive between steps), and its own `MjModel` copy once a per-env parameter is set (until
then all envs share the nominal model). After a step each worker copies its envs' qpos,
qvel, time and sensors into shared numpy buffers that the torch tensors view without copies.
Body poses and contact forces are gathered only when read.
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from .backend import BatchedSim, param_shape

# mj_getState writes time, qpos, qvel in this order into one row of the state buffer.
_STATE = mujoco.mjtState.mjSTATE_TIME | mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL
_CTRL = mujoco.mjtState.mjSTATE_CTRL


class CpuSim(BatchedSim):
    """Batched native MuJoCo on the CPU. `num_threads=None` uses every core."""

    def __init__(self, model: mujoco.MjModel, num_envs: int, *, num_threads: int | None = None):
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}, expected >= 1")
        num_threads = num_threads or os.cpu_count() or 1
        if num_threads < 1:
            raise ValueError(f"num_threads={num_threads}, expected >= 1")
        self.model = model
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        self.num_threads = min(num_threads, num_envs)
        self._models = [model] * num_envs  # per-env copies made on the first set_params
        self._data = [mujoco.MjData(model) for _ in range(num_envs)]
        self._scratch = mujoco.MjData(model)
        self._key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
        nq, nv = model.nq, model.nv

        self._state = np.zeros((num_envs, 1 + nq + nv))  # time, qpos, qvel
        self._sensor = np.zeros((num_envs, model.nsensordata))
        self._diverged = np.zeros(num_envs, dtype=bool)
        self._xpos = np.zeros((num_envs, model.nbody, 3))
        self._xquat = np.zeros((num_envs, model.nbody, 4))
        self._cforce = np.zeros((num_envs, model.nbody, 3))
        self._poses_fresh = self._forces_fresh = False
        self.ctrl = torch.zeros(num_envs, model.nu, dtype=torch.float64)
        self._ctrl = self.ctrl.numpy()  # same memory as the tensor

        t = torch.from_numpy
        self._times = t(self._state[:, 0])
        self._qpos, self._qvel = t(self._state[:, 1 : 1 + nq]), t(self._state[:, 1 + nq :])
        self._sensordata = t(self._sensor)

        bounds = np.linspace(0, num_envs, self.num_threads + 1).astype(int)
        self._chunks = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self._pool = ThreadPoolExecutor(self.num_threads) if self.num_threads > 1 else None
        self.reset()

    # --- state views --------------------------------------------------------------------
    qpos = property(lambda self: self._qpos)
    qvel = property(lambda self: self._qvel)
    sensordata = property(lambda self: self._sensordata)
    time = property(lambda self: self._times)
    diverged = property(lambda self: torch.from_numpy(self._diverged))

    @property
    def body_pos(self) -> torch.Tensor:
        self._refresh_poses()
        return torch.from_numpy(self._xpos)

    @property
    def body_quat(self) -> torch.Tensor:
        self._refresh_poses()
        return torch.from_numpy(self._xquat)

    @property
    def contact_force(self) -> torch.Tensor:
        if not self._forces_fresh:
            self._run(self._gather_forces)
            self._forces_fresh = True
        return torch.from_numpy(self._cforce)

    # --- stepping -----------------------------------------------------------------------
    def step(self, substeps: int = 1) -> None:
        if substeps < 1:
            raise ValueError(f"substeps={substeps}, expected >= 1")
        self._run(self._step_chunk, substeps)
        self._poses_fresh = self._forces_fresh = False

    def _run(self, fn, *args) -> None:
        if self._pool is None:
            fn(self._chunks[0], *args)
        else:
            for f in [self._pool.submit(fn, c, *args) for c in self._chunks]:
                f.result()

    def _step_chunk(self, envs: range, substeps: int) -> None:
        # The hot loop: keep Python work (which holds the GIL) to a few calls per env.
        models, datas, ctrl, state, sensor = (
            self._models,
            self._data,
            self._ctrl,
            self._state,
            self._sensor,
        )
        set_state, get_state, step = mujoco.mj_setState, mujoco.mj_getState, mujoco.mj_step
        advance = (substeps - 0.5) * self.model.opt.timestep  # time moves by substeps * dt
        for i in envs:
            m, d = models[i], datas[i]
            t_before = state[i, 0]
            set_state(m, d, ctrl[i], _CTRL)
            step(m, d, substeps)
            get_state(m, d, state[i], _STATE)
            sensor[i] = d.sensordata
            if state[i, 0] < t_before + advance:  # MuJoCo restarted the env: it diverged
                self._diverged[i] = True

    def _read(self, i: int, m: mujoco.MjModel, d: mujoco.MjData) -> None:
        mujoco.mj_getState(m, d, self._state[i], _STATE)
        self._sensor[i] = d.sensordata

    def _refresh_poses(self) -> None:
        if not self._poses_fresh:
            self._run(self._gather_poses)
            self._poses_fresh = True

    def _gather_poses(self, envs: range) -> None:
        for i in envs:
            m, d = self._models[i], self._data[i]
            mujoco.mj_kinematics(m, d)
            self._xpos[i] = d.xpos
            self._xquat[i] = d.xquat

    def _gather_forces(self, envs: range) -> None:
        f6 = np.zeros(6)
        for i in envs:
            m, d = self._models[i], self._data[i]
            out = self._cforce[i]
            out[:] = 0.0
            for c in range(d.ncon):
                con = d.contact[c]
                mujoco.mj_contactForce(m, d, c, f6)
                # contact frame rows are the normal and tangents; force acts on geom2's body
                world = con.frame.reshape(3, 3).T @ f6[:3]
                out[m.geom_bodyid[con.geom[1]]] += world
                out[m.geom_bodyid[con.geom[0]]] -= world

    # --- reset --------------------------------------------------------------------------
    def reset(self, env_ids=None, qpos=None, qvel=None) -> None:
        ids = self._env_ids(env_ids)
        qpos = _rows(qpos, len(ids), self.model.nq, "qpos")
        qvel = _rows(qvel, len(ids), self.model.nv, "qvel")
        for k, i in enumerate(ids):
            m, d = self._models[i], self._data[i]
            if self._key >= 0:
                mujoco.mj_resetDataKeyframe(m, d, self._key)
            else:
                mujoco.mj_resetData(m, d)
            if qpos is not None:
                d.qpos[:] = qpos[k]
            if qvel is not None:
                d.qvel[:] = qvel[k]
            mujoco.mj_forward(m, d)
            self._ctrl[i] = d.ctrl
            self._diverged[i] = False
            self._read(i, m, d)
        self._poses_fresh = self._forces_fresh = False

    # --- per-env parameters -------------------------------------------------------------
    def set_params(self, name: str, values, env_ids=None) -> None:
        ids = self._env_ids(env_ids)
        shape = param_shape(self.model, name)
        vals = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values, float)
        if vals.shape != (len(ids), *shape):
            raise ValueError(
                f"{name}: values have shape {vals.shape}, expected {(len(ids), *shape)}"
            )
        if not np.isfinite(vals).all():
            raise ValueError(f"{name}: values contain NaN or inf")
        for k, i in enumerate(ids):
            m = self._own_model(i)
            _write_param(m, name, vals[k])
            if name in ("body_mass", "body_ipos"):
                mujoco.mj_setConst(m, self._scratch)  # scratch data: env state untouched

    def get_params(self, name: str) -> torch.Tensor:
        param_shape(self.model, name)  # validates the name
        return torch.from_numpy(np.stack([_read_param(m, name) for m in self._models]))

    def _own_model(self, i: int) -> mujoco.MjModel:
        if self._models[i] is self.model:
            self._models[i] = copy.copy(self.model)
        return self._models[i]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _rows(x, n: int, width: int, what: str) -> np.ndarray | None:
    if x is None:
        return None
    arr = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=float)
    if arr.shape != (n, width):
        raise ValueError(f"{what} has shape {arr.shape}, expected {(n, width)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or inf")
    return arr


def _write_param(m: mujoco.MjModel, name: str, v: np.ndarray) -> None:
    if name == "body_mass":
        ratio = np.divide(v, m.body_mass, out=np.ones_like(v), where=m.body_mass > 0)
        m.body_inertia[:] *= ratio[:, None]  # same shape, new density
        m.body_mass[:] = v
    elif name == "body_ipos":
        # A moved centre of mass no longer coincides with the body frame: tell MuJoCo, so
        # that mj_setConst and the dynamics stop using the same-frame shortcuts.
        moved = np.any(v != m.body_ipos, axis=1)
        m.body_sameframe[moved] = 0
        m.body_simple[moved] = 0
        m.body_ipos[:] = v
    elif name == "actuator_kp":
        position = m.actuator_biasprm[:, 1] != 0
        m.actuator_gainprm[position, 0] = v[position]
        m.actuator_biasprm[position, 1] = -v[position]
    elif name == "actuator_kd":
        velocity = m.actuator_biasprm[:, 1] == 0
        m.actuator_biasprm[:, 2] = -v
        m.actuator_gainprm[velocity, 0] = v[velocity]
    else:
        getattr(m, name)[:] = v


def _read_param(m: mujoco.MjModel, name: str) -> np.ndarray:
    if name == "actuator_kp":
        return m.actuator_gainprm[:, 0] * (m.actuator_biasprm[:, 1] != 0)
    if name == "actuator_kd":
        return -m.actuator_biasprm[:, 2]
    return np.array(getattr(m, name))
