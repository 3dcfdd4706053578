"""The batched-physics contract (sim/physics/__init__.py), one test per promise, run on every
backend: the CPU reference and MuJoCo Warp on Warp's CPU device ("warp:cpu"; a CUDA device
runs the same kernels). Backend-specific behaviour (CPU bit-equality with solo runs, Warp's
buffer overflow and CUDA graphs) stays in test_physics_cpu.py and test_physics_warp.py.

Per-world isolation is checked bit for bit; values are compared in float64 (Warp runs float32).
"""

import importlib.util

import mujoco
import numpy as np
import pytest
import torch
from scenes import BOX_AND_ARM

from xembody.sim.physics import PARAMS, CpuSim, make_sim

NO_WARP = importlib.util.find_spec("mujoco_warp") is None
BACKENDS = [
    "cpu",
    pytest.param("warp:cpu", marks=pytest.mark.skipif(NO_WARP, reason="mujoco-warp missing")),
]
MOCAP = """<mujoco><worldbody><body name="m" mocap="true"><geom size=".1" contype="0"
conaffinity="0"/></body><body><freejoint/><geom size=".1"/></body></worldbody></mujoco>"""


@pytest.fixture(scope="module")
def box():
    return mujoco.MjModel.from_xml_string(BOX_AND_ARM)


def make(backend: str, model: mujoco.MjModel, n: int):
    extra = {"num_threads": 1} if backend == "cpu" else {}
    return make_sim(model, n, backend, **extra)


def _run(sim, steps=40, seed=0):
    """Kick every world, drive the hinge with a sine; the final state (float64)."""
    qvel = torch.from_numpy(np.random.default_rng(seed).normal(0, 0.5, (sim.num_envs, 7)))
    sim.reset(qvel=qvel)
    for k in range(steps):
        sim.ctrl[:] = float(np.sin(0.1 * k))
        sim.step(2)
    return torch.cat([sim.qpos, sim.qvel], 1).double().clone()


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_some_worlds_leaves_the_others_untouched(box, backend):
    a, b = make(backend, box, 5), make(backend, box, 5)
    for sim in (a, b):
        _run(sim, steps=20, seed=3)
    a.reset([1, 3])
    keep = [0, 2, 4]
    for name in ("qpos", "qvel", "sensordata", "contact_force", "body_pos", "time"):
        assert torch.equal(getattr(a, name)[keep], getattr(b, name)[keep]), name
    key = torch.from_numpy(box.key_qpos[0]).to(a.qpos.dtype)  # exactly, in the sim's dtype
    assert torch.equal(a.qpos[[1, 3]], key.expand(2, -1))
    assert torch.all(a.qvel[[1, 3]] == 0) and torch.all(a.time[[1, 3]] == 0)
    assert torch.all(a.ctrl[[1, 3]] == 0.3)  # keyframe targets restored
    for _ in range(10):  # the untouched worlds keep evolving identically
        a.step(2)
        b.step(2)
    assert torch.equal(a.qpos[keep], b.qpos[keep])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "name,scale", [("dof_damping", 50.0), ("body_mass", 3.0), ("actuator_kp", 4.0)]
)
def test_a_parameter_changes_its_world_only(box, backend, name, scale):
    nominal, changed = make(backend, box, 3), make(backend, box, 3)
    values = changed.get_params(name)[1:2] * scale
    changed.set_params(name, values, env_ids=[1])
    assert torch.equal(changed.get_params(name)[1], values[0])
    a, b = _run(nominal), _run(changed)
    assert torch.equal(a[[0, 2]], b[[0, 2]]), "worlds 0 and 2 must be bit-identical"
    assert (a[1] - b[1]).abs().max() > 1e-3, f"{name} did not reach world 1's physics"


@pytest.mark.parametrize("backend", BACKENDS)
def test_friction_reaches_its_world_only(box, backend):
    slide = np.tile(box.key_qpos[0], (3, 1))
    slide[:, 2] = 0.1  # resting on the floor, pushed along x
    qvel = np.zeros((3, box.nv))
    qvel[:, 0] = 2.0
    nominal, changed = make(backend, box, 3), make(backend, box, 3)
    friction = changed.get_params("geom_friction")[1:2].clone()
    friction[..., 0] = 0.05
    changed.set_params("geom_friction", friction, env_ids=[1])
    for sim in (nominal, changed):
        sim.reset(qpos=slide, qvel=qvel)
        for _ in range(100):
            sim.step(2)
    assert torch.equal(nominal.qpos[[0, 2]], changed.qpos[[0, 2]])
    assert changed.qpos[1, 0] > 2 * nominal.qpos[1, 0]  # slid more than twice as far


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_param_round_trips_with_the_cpu_semantics(box, backend):
    sim, ref = make(backend, box, 2), CpuSim(box, 2, num_threads=1)
    for name in PARAMS:
        want = ref.get_params(name)
        assert torch.allclose(sim.get_params(name).double(), want, rtol=1e-6), name
        vals = want * 1.5 + 0.01
        sim.set_params(name, vals)
        ref.set_params(name, vals)
        assert torch.allclose(sim.get_params(name).double(), vals, rtol=1e-6), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_mocap_positions_are_per_world_and_survive_steps(backend):
    model = mujoco.MjModel.from_xml_string(MOCAP)
    sim = make(backend, model, 3)
    sim.reset([0, 2], mocap_pos=np.array([[[1.0, 2.0, 3.0]], [[-1.0, 0.0, 0.5]]]))
    for _ in range(5):
        sim.step(2)
    sim.reset([1])  # another world's reset leaves them alone
    want = torch.tensor([[1.0, 2, 3], [0, 0, 0], [-1, 0, 0.5]], dtype=torch.float64)
    assert torch.allclose(sim.body_pos[:, model.body("m").id].double(), want)
    assert torch.allclose(sim.mocap_pos[:, 0].double(), want)
    with pytest.raises(ValueError, match="mocap_pos has shape"):
        sim.reset([0], mocap_pos=np.zeros((1, 2, 3)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_is_flagged_and_cleared_by_reset(box, backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes its warning log to the working directory
    sim = make(backend, box, 2)
    sim.set_params("dof_armature", np.zeros((1, box.nv)), env_ids=[1])
    sim.set_params("actuator_kp", np.array([[1e12]]), env_ids=[1])
    sim.reset()
    sim.ctrl[:] = 2.0
    for _ in range(20):
        sim.step(5)
    assert sim.diverged.tolist() == [False, True]
    assert torch.isfinite(sim.qpos).all() and torch.isfinite(sim.qvel).all()
    sim.reset([1])
    assert not sim.diverged.any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_is_rejected_with_a_clear_error(box, backend):
    sim = make(backend, box, 2)
    with pytest.raises(KeyError, match="unknown physics parameter 'mass'"):
        sim.set_params("mass", np.ones((2, 3)))
    with pytest.raises(
        ValueError, match=r"body_mass: values have shape \(2, 2\), expected \(2, 3\)"
    ):
        sim.set_params("body_mass", np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        sim.set_params("dof_damping", np.full((2, box.nv), np.nan))
    with pytest.raises(ValueError, match="qpos has shape"):
        sim.reset([0], qpos=np.zeros((1, 3)))
    with pytest.raises(IndexError, match="outside"):
        sim.reset([5])
    with pytest.raises(ValueError, match="unknown physics backend 'tpu'"):
        make_sim(box, 2, backend="tpu")
