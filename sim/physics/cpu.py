"""CPU backend: native MuJoCo for N envs, stepped in parallel by `mujoco.rollout`.

The state of every env lives in one numpy array (MuJoCo's "full physics" state: time,
qpos, qvel, actuator activations, ...), which the torch tensors view without copies. A
`step(substeps)` hands all envs to MuJoCo's rollout, whose C++ thread pool steps disjoint
chunks of envs on its own threads (no Python, no GIL in the loop) and writes the new states
and sensor readings back. Each env has its own `MjModel` once a per-env parameter is set
(until then all envs share the nominal model).

What a step keeps and drops: each call to `step` starts MuJoCo's constraint solver cold
(zero warm start) on its first substep, and warm-starts the rest; results are therefore
independent of chunking and thread count (a batch equals its envs run one by one, bit for
bit), and equal a plain `mj_step` loop that zeroes `qacc_warmstart` at each control step.
Body poses and contact forces are computed only when read, from the current state.
"""

from __future__ import annotations

import copy
import os

import mujoco
import numpy as np
import torch
from mujoco import rollout

from .backend import BatchedSim, param_shape

_FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS  # layout starts with time, qpos, qvel
_CTRL = mujoco.mjtState.mjSTATE_CTRL
_MOCAP = mujoco.mjtState.mjSTATE_MOCAP_POS  # not part of the physics state: an input, like ctrl


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
        # One scratch MjData per rollout thread; also used for resets and lazy gathers.
        self._scratch = [mujoco.MjData(model) for _ in range(self.num_threads)]
        self._rollout = rollout.Rollout(nthread=self.num_threads if self.num_threads > 1 else 0)
        self._key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
        nq, nv = model.nq, model.nv

        self._state = np.zeros((num_envs, mujoco.mj_stateSize(model, _FULL)))
        self._sensor = np.zeros((num_envs, model.nsensordata))
        self._cold = np.zeros((num_envs, nv))  # the solver's warm start at each step call
        self._diverged = np.zeros(num_envs, dtype=bool)
        self._xpos = np.zeros((num_envs, model.nbody, 3))
        self._xquat = np.zeros((num_envs, model.nbody, 4))
        self._cforce = np.zeros((num_envs, model.nbody, 3))
        self._poses_fresh = self._forces_fresh = False
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.ctrl = torch.zeros(num_envs, model.nu, dtype=torch.float64)
        self._ctrl = self.ctrl.numpy()  # same memory as the tensor
        # Mocap positions (targets, obstacles) travel with ctrl as rollout's control input.
        self._mocap = np.zeros((num_envs, 3 * model.nmocap))
        self._input_spec = _CTRL | _MOCAP if model.nmocap else _CTRL

        t = torch.from_numpy
        self._times = t(self._state[:, 0])
        self._qpos = t(self._state[:, 1 : 1 + nq])
        self._qvel = t(self._state[:, 1 + nq : 1 + nq + nv])
        self._sensordata = t(self._sensor)
        self.reset()

    # --- state views --------------------------------------------------------------------
    qpos = property(lambda self: self._qpos)
    qvel = property(lambda self: self._qvel)
    sensordata = property(lambda self: self._sensordata)
    time = property(lambda self: self._times)
    diverged = property(lambda self: torch.from_numpy(self._diverged))
    mocap_pos = property(lambda self: torch.from_numpy(self._mocap).view(self.num_envs, -1, 3))

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
            self._gather_forces()
            self._forces_fresh = True
        return torch.from_numpy(self._cforce)

    # --- stepping -----------------------------------------------------------------------
    def step(self, substeps: int = 1) -> None:
        if substeps < 1:
            raise ValueError(f"substeps={substeps}, expected >= 1")
        if substeps not in self._buffers:
            n = self.num_envs
            self._buffers[substeps] = (
                np.empty((n, substeps, self.model.nu + self._mocap.shape[1])),
                np.empty((n, substeps, self._state.shape[1])),
                np.empty((n, substeps, self.model.nsensordata)),
            )
        ctrl, states, sensors = self._buffers[substeps]
        nu = self.model.nu
        ctrl[:, :, :nu] = self._ctrl[:, None, :]
        ctrl[:, :, nu:] = self._mocap[:, None, :]
        t_before = self._state[:, 0].copy()
        self._rollout.rollout_.rollout(
            self._models, self._scratch, substeps, int(self._input_spec),
            self._state, self._cold, ctrl, states, sensors, None,
        )  # fmt: skip
        self._state[:] = states[:, -1]
        self._sensor[:] = sensors[:, -1]
        # MuJoCo restarts an env whose physics went unstable: its clock falls behind.
        self._diverged |= self._state[:, 0] < t_before + (substeps - 0.5) * self.timestep
        self._poses_fresh = self._forces_fresh = False

    def _load(self, i: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Env i's model and a scratch MjData holding its current state and ctrl."""
        m, d = self._models[i], self._scratch[0]
        mujoco.mj_setState(m, d, self._state[i], _FULL)
        mujoco.mj_setState(m, d, self._ctrl[i], _CTRL)
        d.mocap_pos[:] = self._mocap[i].reshape(-1, 3)
        d.qacc_warmstart[:] = 0.0
        return m, d

    def _refresh_poses(self) -> None:
        if self._poses_fresh:
            return
        for i in range(self.num_envs):
            m, d = self._load(i)
            mujoco.mj_kinematics(m, d)
            self._xpos[i] = d.xpos
            self._xquat[i] = d.xquat
        self._poses_fresh = True

    def _gather_forces(self) -> None:
        f6 = np.zeros(6)
        for i in range(self.num_envs):
            m, d = self._load(i)
            mujoco.mj_forward(m, d)
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
    def reset(self, env_ids=None, qpos=None, qvel=None, mocap_pos=None) -> None:
        ids = self._env_ids(env_ids)
        qpos = _rows(qpos, len(ids), self.model.nq, "qpos")
        qvel = _rows(qvel, len(ids), self.model.nv, "qvel")
        nmocap = self.model.nmocap
        if mocap_pos is not None:
            mocap_pos = _rows(mocap_pos, len(ids), nmocap * 3, "mocap_pos", flatten=True)
        d = self._scratch[0]
        for k, i in enumerate(ids):
            m = self._models[i]
            if self._key >= 0:
                mujoco.mj_resetDataKeyframe(m, d, self._key)
            else:
                mujoco.mj_resetData(m, d)
            if qpos is not None:
                d.qpos[:] = qpos[k]
            if qvel is not None:
                d.qvel[:] = qvel[k]
            if mocap_pos is not None:
                d.mocap_pos[:] = mocap_pos[k].reshape(nmocap, 3)
            mujoco.mj_forward(m, d)
            mujoco.mj_getState(m, d, self._state[i], _FULL)
            self._mocap[i] = d.mocap_pos.reshape(-1)
            self._sensor[i] = d.sensordata
            self._ctrl[i] = d.ctrl
            self._diverged[i] = False
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
                mujoco.mj_setConst(m, self._scratch[0])  # scratch data: env state untouched

    def get_params(self, name: str) -> torch.Tensor:
        param_shape(self.model, name)  # validates the name
        return torch.from_numpy(np.stack([_read_param(m, name) for m in self._models]))

    def _own_model(self, i: int) -> mujoco.MjModel:
        if self._models[i] is self.model:
            self._models[i] = copy.copy(self.model)
        return self._models[i]

    def close(self) -> None:
        self._rollout.close()


def _rows(x, n: int, width: int, what: str, flatten: bool = False) -> np.ndarray | None:
    if x is None:
        return None
    arr = np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x, dtype=float)
    if flatten:
        arr = arr.reshape(len(arr), -1)
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
