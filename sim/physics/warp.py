"""MuJoCo Warp backend: N worlds of one model stepped by GPU (or Warp CPU) kernels.

The model goes to the device once (`mujoco_warp.put_model`) with every field named in
`PARAMS` (and the constants derived from them) batched to a leading dimension of N, so
each world has its own parameters; the data holds N worlds (`put_data(nworld=N)`). All
state tensors are `wp.to_torch` views of the Warp arrays: no copies, refreshed in place.

A `step(substeps)` runs, on the device: zero the solver warm start (as `CpuSim`: each call
starts cold), `substeps` x `mujoco_warp.step`, kinematics at the new state (so `body_pos`
matches `qpos`), the per-body contact forces of the last substep and a health check
(NaN or |x| > 1e10 in qpos/qvel/qacc, MuJoCo's own divergence test). On a CUDA device the
sequence is captured once per substep count as a CUDA graph and replayed. One small
device-to-host read per call then reports buffer overflows (and, on CUDA, NaN or inf
values given to earlier `reset`/`set_params` calls: checked there without a sync) and
restarts diverged worlds from "home" (as native MuJoCo restarts an unstable env).

Per-world resets and parameter changes touch only their worlds: the reset worlds get the
keyframe by a masked `reset_data_keyframe`, then their forward pass (sensors, poses,
contact forces) runs on a small scratch batch (`_Scratch`: the model's per-world fields
and the data's state of just those worlds, padded to a power of two, captured as a CUDA
graph per size) and the results are scattered back; a mass or centre-of-mass change
recomputes the derived constants (`set_const`, a graph too) on the same scratch. The other
worlds' arrays are not written at all. When more than `scratch_max` worlds (default N/4) reset
at once, one forward over the whole batch is cheaper, and the other worlds' sensors and
contact forces are put back bit for bit. With device index tensors neither call reads
anything back to the host.

Numerics are float32 (Warp) where `CpuSim` is float64: see docs/PHYSICS.md for the
measured parity. Contact and constraint buffers are sized by `buffer_sizes` (override with
`nconmax=` / `njmax=`); an overflow raises (or warns, `on_overflow="warn"`) naming the
buffer and the argument that enlarges it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import mujoco
import numpy as np
import torch
import warp as wp

try:
    import mujoco_warp as mjw
except ImportError as e:  # pragma: no cover - exercised only without the package
    raise ImportError(
        "the warp backend needs mujoco-warp: pip install 'mujoco-warp>=4.0,<5' "
        "(or the 'gpu' extra of xembody)"
    ) from e

from .backend import BatchedSim, param_shape
from .warp_kernels import body_contact_forces, health

wp.config.quiet = True
wp.config.log_level = wp.LOG_WARNING  # no line per kernel module loaded (stdout: --json)
# Per-world model fields: PARAMS plus the constants mujoco_warp.set_const derives from them.
_BATCHED = (
    "body_mass", "body_inertia", "body_ipos", "body_subtreemass", "body_invweight0",
    "dof_invweight0", "dof_damping", "dof_armature", "dof_frictionloss", "geom_friction",
    "actuator_gainprm", "actuator_biasprm", "actuator_acc0", "tendon_invweight0",
)  # fmt: skip
# Constants set_const derives from PARAMS (copied back from the scratch batch).
_DERIVED = (
    "body_subtreemass", "body_invweight0", "dof_invweight0", "tendon_invweight0",
    "actuator_acc0",
)  # fmt: skip
# What forward reads from the data besides the model: the state reset_data writes.
_STATE = (
    "time", "qpos", "qvel", "act", "ctrl", "qfrc_applied", "xfrc_applied", "eq_active",
    "mocap_pos", "mocap_quat", "qacc_warmstart", "userdata",
)  # fmt: skip
_OVERFLOW_ARG = {  # mujoco_warp.OverflowType name -> (what ran out, how to enlarge it)
    "NEFC": ("constraint rows per world (njmax)", "njmax="),
    "NJMAX_NNZ": ("constraint Jacobian non-zeros", "njmax="),
    "BROADPHASE": ("contact pool (nconmax x worlds)", "nconmax="),
    "NARROWPHASE": ("contact pool (nconmax x worlds)", "nconmax="),
    "CCD": ("convex-collision contacts", "nconmax="),
}


def buffer_sizes(model: mujoco.MjModel) -> tuple[int, int]:
    """(nconmax, njmax) per world for `model`: 4 contacts per collidable geom of a moving
    body (a box on a plane makes 4) plus 4 per explicit pair; constraint rows for those
    contacts at the model's widest contact (pyramidal: 2 (condim - 1), elliptic: condim),
    one row per dof (friction loss can be randomised on), per limited joint or tendon,
    and 6 per equality. Both rounded up to a multiple of 8."""
    moving = model.geom_bodyid != 0
    collidable = (model.geom_contype | model.geom_conaffinity) != 0
    nconmax = 4 * int(np.sum(moving & collidable)) + 4 * model.npair
    condim = int(max(model.geom_condim.max(initial=1), model.pair_dim.max(initial=1)))
    elliptic = model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    rows = condim if elliptic or condim == 1 else 2 * (condim - 1)
    njmax = nconmax * rows + model.nv + int(model.jnt_limited.sum())
    njmax += int(model.tendon_limited.sum()) + 6 * model.neq
    up = lambda x: max(8, -(-x // 8) * 8)  # noqa: E731
    return up(nconmax), up(njmax)


class WarpSim(BatchedSim):
    """Batched MuJoCo Warp on `device` ("cpu" or "cuda[:i]"). `num_threads` is accepted
    for make_sim compatibility and unused. See the module docstring."""

    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        *,
        device: str = "cuda",
        nconmax: int | None = None,
        njmax: int | None = None,
        on_overflow: str = "raise",
        num_threads: int | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}, expected >= 1")
        if on_overflow not in ("raise", "warn"):
            raise ValueError(f"on_overflow={on_overflow!r}, expected 'raise' or 'warn'")
        if device.startswith("cuda") and not wp.is_cuda_available():
            raise ValueError(
                f"device={device!r}: Warp finds no CUDA device on this machine "
                "(no NVIDIA driver or GPU); use device='cpu' or the cpu backend"
            )
        if not (device == "cpu" or device.startswith("cuda")):
            raise ValueError(f"device={device!r}, expected 'cpu', 'cuda' or 'cuda:<index>'")
        self.model, self.num_envs, self.on_overflow = model, num_envs, on_overflow
        self._wp_device = wp.get_device(device)
        self._cuda = self._wp_device.is_cuda
        self.device = torch.device(wp.device_to_torch(self._wp_device))
        auto_con, auto_j = buffer_sizes(model)
        self.nconmax, self.njmax = nconmax or auto_con, njmax or auto_j
        self._key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
        self._stream = self._wp_device.stream if self._cuda else None
        with self._on_device():
            try:
                self._m = mjw.put_model(model, batch_sizes=dict.fromkeys(_BATCHED, num_envs))
            except NotImplementedError as e:
                raise ValueError(f"MuJoCo Warp cannot simulate this model: {e}") from None
            self._m.opt.warn_overflow = 0  # overflows are reported by step() instead
            self._d = mjw.put_data(
                model, mujoco.MjData(model), nworld=num_envs, nconmax=self.nconmax,
                njmax=self.njmax,
            )  # fmt: skip
            self._cforce_wp = wp.zeros((num_envs, model.nbody), dtype=wp.vec3)
            self._bad_wp = wp.zeros(num_envs, dtype=int)
        t, d = wp.to_torch, self._d
        self.ctrl = t(d.ctrl)
        self._qpos, self._qvel, self._qacc, self._time = t(d.qpos), t(d.qvel), t(d.qacc), t(d.time)
        self._sensordata, self._xpos, self._xquat = t(d.sensordata), t(d.xpos), t(d.xquat)
        self._mocap, self._cforce, self._bad = t(d.mocap_pos), t(self._cforce_wp), t(self._bad_wp)
        self._overflow = t(d.overflow)
        self._diverged = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._graphs: dict[int, object] = {}
        self._scratch: dict[int, _Scratch] = {}
        self.scratch_max = num_envs // 4  # resets of more worlds run over the whole batch
        self._input_bad = torch.zeros((), dtype=torch.bool, device=self.device)
        position = torch.as_tensor(model.actuator_biasprm[:, 1] != 0)
        self._position = position.nonzero().flatten().to(self.device)
        self._velocity = (~position).nonzero().flatten().to(self.device)
        self.reset()

    # --- state views --------------------------------------------------------------------
    qpos = property(lambda self: self._qpos)
    qvel = property(lambda self: self._qvel)
    sensordata = property(lambda self: self._sensordata)
    time = property(lambda self: self._time)
    body_pos = property(lambda self: self._xpos)
    body_quat = property(lambda self: self._xquat)
    contact_force = property(lambda self: self._cforce)
    diverged = property(lambda self: self._diverged)
    mocap_pos = property(lambda self: self._mocap)

    # --- stepping -----------------------------------------------------------------------
    @contextmanager
    def _on_device(self):
        """Run Warp work on this sim's device; on CUDA, on Warp's stream ordered after
        torch's current stream (ctrl writes) and before it (reads of the state)."""
        if not self._cuda:
            with wp.ScopedDevice(self._wp_device):
                yield
            return
        torch_stream = wp.stream_from_torch(torch.cuda.current_stream(self.device))
        self._stream.wait_stream(torch_stream)
        with wp.ScopedDevice(self._wp_device), wp.ScopedStream(self._stream):
            yield
        torch_stream.wait_stream(self._stream)

    def _advance(self, substeps: int) -> None:
        """The device-side work of one step() call (the part captured as a graph)."""
        m, d = self._m, self._d
        d.qacc_warmstart.zero_()
        for _ in range(substeps):
            mjw.step(m, d)
        mjw.kinematics(m, d)
        self._gather_forces()
        wp.launch(
            health, dim=self.num_envs, inputs=[d.qpos, d.qvel, d.qacc], outputs=[self._bad_wp]
        )

    def _replay(self, graphs: dict, key, fn) -> None:
        """fn() on this sim's device; on CUDA captured once as graphs[key] and replayed
        (temporary arrays fn allocates become the graph's own allocations)."""
        with self._on_device():
            if not self._cuda:
                fn()
                return
            if key not in graphs:
                with wp.ScopedCapture(device=self._wp_device, stream=self._stream) as cap:
                    fn()
                graphs[key] = cap.graph
            wp.capture_launch(graphs[key], stream=self._stream)

    def _gather_forces(self) -> None:
        self._cforce_wp.zero_()
        self._launch_forces(self._m, self._d, self._cforce_wp)

    @staticmethod
    def _launch_forces(m, d, out) -> None:
        c = d.contact
        wp.launch(
            body_contact_forces,
            dim=d.naconmax,
            inputs=[
                m.opt.cone, m.geom_bodyid, c.frame, c.friction, c.dim, c.efc_address,
                c.worldid, c.adhesion, c.geom, d.efc.force, d.njmax, d.nacon,
            ],
            outputs=[out],
        )  # fmt: skip

    def step(self, substeps: int = 1) -> None:
        if substeps < 1:
            raise ValueError(f"substeps={substeps}, expected >= 1")
        self._replay(self._graphs, substeps, lambda: self._advance(substeps))
        bad = self._bad != 0
        if bool((bad.any() | self._overflow.any() | self._input_bad).item()):  # the one sync
            if bool(self._input_bad):
                self._input_bad.zero_()
                raise ValueError("reset() or set_params() was given NaN or inf values")
            self._report_overflow()
            ids = bad.nonzero().flatten()
            if len(ids):
                self._reset_idx(ids, None, None, None)
                self._diverged[ids] = True

    def _report_overflow(self) -> None:
        flags = int(np.bitwise_or.reduce(self._overflow.cpu().numpy()))
        if not flags:
            return
        names = [f.name for f in mjw.OverflowType if f.value and f.value & (f.value - 1) == 0]
        hit = [n for n in names if flags & int(mjw.OverflowType[n])]
        detail = "; ".join(
            f"{n}: {_OVERFLOW_ARG[n][0]} is full, enlarge with WarpSim({_OVERFLOW_ARG[n][1]}...)"
            if n in _OVERFLOW_ARG
            else n
            for n in hit
        )
        msg = (
            f"MuJoCo Warp buffer overflow ({detail}); now nconmax={self.nconmax}, "
            f"njmax={self.njmax}: contacts or constraints were dropped, the physics is wrong"
        )
        self._overflow.zero_()
        if self.on_overflow == "raise":
            raise RuntimeError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)

    # --- reset --------------------------------------------------------------------------
    def reset(self, env_ids=None, qpos=None, qvel=None, mocap_pos=None) -> None:
        idx = self._index(env_ids)
        k, m = len(idx), self.model
        qpos = self._rows(qpos, k, (m.nq,), "qpos")
        qvel = self._rows(qvel, k, (m.nv,), "qvel")
        mocap_pos = self._rows(mocap_pos, k, (m.nmocap, 3), "mocap_pos")
        if k:
            self._reset_idx(idx, qpos, qvel, mocap_pos)

    def _index(self, env_ids) -> torch.Tensor:
        """env_ids as a long tensor on the device. Host ids (None, lists, CPU tensors) are
        range-checked; device tensors are not (that would be a sync): torch's indexing
        then fails on an id outside [0, N)."""
        if isinstance(env_ids, torch.Tensor) and env_ids.device.type != "cpu":
            return env_ids.to(self.device, torch.long).reshape(-1)
        return torch.as_tensor(self._env_ids(env_ids), device=self.device)

    def _rows(self, x, k: int, shape: tuple[int, ...], what: str) -> torch.Tensor | None:
        """x as float32 (k, *shape) on the device ((k, prod(shape)) accepted too). NaN or
        inf raises at once on the CPU and at the next step() on CUDA (checked inside that
        step's one host read)."""
        if x is None:
            return None
        t = torch.as_tensor(x.detach() if isinstance(x, torch.Tensor) else np.asarray(x))
        t = t.to(self.device, torch.float32)
        width = int(np.prod(shape))
        if (
            t.dim() < 2
            or len(t) != k
            or t[0].numel() != width
            or (tuple(t.shape[1:]) not in (shape, (width,)))
        ):
            verb = "have" if what.endswith("values") else "has"
            raise ValueError(f"{what} {verb} shape {tuple(t.shape)}, expected {(k, *shape)}")
        t = t.reshape(k, *shape)
        self._check_finite(t, what)
        return t

    def _check_finite(self, t: torch.Tensor, what: str) -> None:
        if not self._cuda:
            if not torch.isfinite(t).all():
                raise ValueError(f"{what} contains NaN or inf")
        else:
            self._input_bad |= ~torch.isfinite(t).all()

    def _reset_idx(self, idx: torch.Tensor, qpos, qvel, mocap_pos) -> None:
        n, dev, k = self.num_envs, self.device, len(idx)
        chosen = torch.zeros(n, dtype=torch.bool, device=dev)
        chosen[idx] = True
        with self._on_device():  # masked: the other worlds' arrays are not written
            if self._key >= 0:
                key = torch.where(chosen, self._key, -1).to(torch.int32)
                mjw.reset_data_keyframe(self._m, self._d, wp.from_torch(key))
            else:
                mjw.reset_data(self._m, self._d, wp.from_torch(chosen))
        if qpos is not None:
            self._qpos[idx] = qpos
        if qvel is not None:
            self._qvel[idx] = qvel
        if mocap_pos is not None:
            self._mocap[idx] = mocap_pos
        if k <= self.scratch_max:
            self._scratch_for(k).forward(self, idx)
        else:  # many worlds: one forward over all, then the others' readings put back
            saved_sensors, saved_forces = self._sensordata.clone(), self._cforce.clone()
            with self._on_device():
                mjw.forward(self._m, self._d)
                self._gather_forces()
            keep = ~chosen
            self._sensordata.copy_(torch.where(keep[:, None], saved_sensors, self._sensordata))
            self._cforce.copy_(torch.where(keep[:, None, None], saved_forces, self._cforce))
        self._diverged[idx] = False

    def _scratch_for(self, k: int) -> _Scratch:
        size = min(self.num_envs, max(8, 1 << (k - 1).bit_length()))
        if size not in self._scratch:
            self._scratch[size] = _Scratch(self, size)
        return self._scratch[size]

    # --- per-env parameters -------------------------------------------------------------
    def _field(self, name: str) -> torch.Tensor:
        return wp.to_torch(getattr(self._m, name))

    def set_params(self, name: str, values, env_ids=None) -> None:
        idx = self._index(env_ids)
        shape = param_shape(self.model, name)
        v = self._rows(values, len(idx), shape, f"{name}: values")  # float32, on the device
        if name == "body_mass":
            mass = self._field("body_mass")
            ratio = torch.where(mass[idx] > 0, v / mass[idx].clamp_min(1e-30), 1.0)
            self._field("body_inertia")[idx] *= ratio[..., None]  # same shape, new density
            mass[idx] = v
        elif name in ("actuator_kp", "actuator_kd"):
            gain, bias = self._field("actuator_gainprm"), self._field("actuator_biasprm")
            rows = idx[:, None]
            if name == "actuator_kp":  # PD position actuators only (bias -kp q)
                pos = self._position
                gain[rows, pos, 0] = v[:, pos]
                bias[rows, pos, 1] = -v[:, pos]
            else:  # damping of PD actuators; the gain of velocity actuators
                bias[idx, :, 2] = -v
                vel = self._velocity
                gain[rows, vel, 0] = v[:, vel]
        else:
            self._field(name)[idx] = v
        if name in ("body_mass", "body_ipos") and len(idx):  # subtree mass, invweights
            if len(idx) <= self.scratch_max:
                self._scratch_for(len(idx)).set_const(self, idx)
            else:  # over all worlds; the others' constants put back (set_const's float32
                # recomputation differs from MuJoCo's float64 one by rounding)
                keep = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
                keep[idx] = False
                saved = [self._field(f).clone() for f in _DERIVED]
                with self._on_device():
                    mjw.set_const(self._m, self._d)
                for f, old in zip(_DERIVED, saved, strict=True):
                    new = self._field(f)
                    new.copy_(torch.where(keep.view(-1, *[1] * (new.dim() - 1)), old, new))

    def get_params(self, name: str) -> torch.Tensor:
        param_shape(self.model, name)  # validates the name
        if name == "actuator_kp":
            gain, bias = self._field("actuator_gainprm"), self._field("actuator_biasprm")
            return gain[..., 0] * (bias[..., 1] != 0)
        if name == "actuator_kd":
            return -self._field("actuator_biasprm")[..., 2].clone()
        return self._field(name).clone()

    def close(self) -> None:
        self._graphs.clear()
        self._scratch.clear()


class _Scratch:
    """A batch of `size` worlds (model with per-world fields, data, contact forces) that
    runs the forward pass or set_const for up to `size` chosen worlds of a `WarpSim`:
    gather their parameters and state (padding with the first chosen world), run, scatter
    the results back to those worlds only. On CUDA both are captured as graphs."""

    def __init__(self, sim: WarpSim, size: int):
        model, self.size = sim.model, size
        with sim._on_device():
            self.m = mjw.put_model(model, batch_sizes=dict.fromkeys(_BATCHED, size))
            self.m.opt.warn_overflow = 0
            self.d = mjw.put_data(
                model, mujoco.MjData(model), nworld=size, nconmax=sim.nconmax, njmax=sim.njmax
            )
            self.cforce_wp = wp.zeros((size, model.nbody), dtype=wp.vec3)
        self.graphs: dict[str, object] = {}  # CUDA graphs of _forward and _set_const
        t = wp.to_torch
        self.params = [(t(getattr(self.m, f)), sim._field(f)) for f in _BATCHED]
        self.state = [
            (t(getattr(self.d, f)), t(getattr(sim._d, f)))
            for f in _STATE
            if getattr(sim._d, f).size  # empty fields (no mocap, no activations) skipped
        ]
        self.derived = [(t(getattr(self.m, f)), sim._field(f)) for f in _DERIVED]
        d = self.d
        self.outputs = [
            (t(d.sensordata), sim._sensordata), (t(d.xpos), sim._xpos),
            (t(d.xquat), sim._xquat), (t(self.cforce_wp), sim._cforce),
        ]  # fmt: skip

    def _gather(self, idx: torch.Tensor, pairs) -> None:
        pad = idx if len(idx) == self.size else torch.cat(
            [idx, idx[:1].expand(self.size - len(idx))]
        )  # fmt: skip
        for mine, theirs in pairs:
            mine.copy_(theirs[pad])

    def forward(self, sim: WarpSim, idx: torch.Tensor) -> None:
        """Sensors, poses and contact forces of worlds `idx` at their current state."""
        self._gather(idx, self.params + self.state)
        sim._replay(self.graphs, "forward", self._forward)
        k = len(idx)
        for mine, theirs in self.outputs:
            theirs[idx] = mine[:k]

    def _forward(self) -> None:
        mjw.forward(self.m, self.d)
        self.cforce_wp.zero_()
        WarpSim._launch_forces(self.m, self.d, self.cforce_wp)

    def _set_const(self) -> None:  # a few hundred launches (loops over dofs, bodies, actuators)
        mjw.set_const(self.m, self.d, restore=False)

    def set_const(self, sim: WarpSim, idx: torch.Tensor) -> None:
        """The derived constants (`_DERIVED`) of worlds `idx` from their parameters."""
        self._gather(idx, self.params)
        sim._replay(self.graphs, "set_const", self._set_const)
        k = len(idx)
        for mine, theirs in self.derived:
            theirs[idx] = mine[:k]


__all__ = ["WarpSim", "buffer_sizes"]
