"""Behaviour of the batched CPU backend on small hand-made models."""

import mujoco
import numpy as np
import pytest
import torch
from scenes import BOX_AND_ARM

from xembody.sim import bodies
from xembody.sim.physics import PARAMS, CpuSim, MultiBodySim, make_sim

PENDULUM = """
<mujoco><worldbody><body pos="0 0 1"><joint name="a" axis="1 0 0"/><joint name="b" axis="0 1 0"/>
<geom type="capsule" fromto="0 0 0 0 0 -.5" size=".05"/></body></worldbody>
<actuator><motor joint="a"/><motor joint="b"/></actuator></mujoco>
"""


@pytest.fixture(scope="module")
def model():
    return mujoco.MjModel.from_xml_string(BOX_AND_ARM)


def _rollout(sim, ctrl_seq, substeps=2):
    out = []
    for u in ctrl_seq:
        sim.ctrl[:] = u
        sim.step(substeps)
        out.append(torch.cat([sim.qpos, sim.qvel], 1).clone())
    return torch.stack(out)


def _kick(n, nv, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(0, 0.5, (n, nv)))


def test_batch_equals_envs_stepped_one_by_one(model):
    n, steps = 6, 60
    ctrl = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (steps, n, model.nu)))
    qvel = _kick(n, model.nv)
    batch = CpuSim(model, n, num_threads=2)
    batch.reset(qvel=qvel)
    got = _rollout(batch, ctrl)
    for i in range(n):
        single = CpuSim(model, 1, num_threads=1)
        single.reset(qvel=qvel[i : i + 1])
        want = _rollout(single, ctrl[:, i : i + 1])
        assert torch.equal(got[:, i], want[:, 0]), f"env {i} differs from its solo run"
    # and the same as a plain mj_step loop on one MjData whose solver starts cold at each
    # control step (the backend's documented semantics)
    d = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, d, 0)
    d.qvel[:] = qvel[2].numpy()
    for t in range(steps):
        d.ctrl[:] = ctrl[t, 2].numpy()
        d.qacc_warmstart[:] = 0.0
        mujoco.mj_step(model, d, 2)
    np.testing.assert_array_equal(d.qpos, got[-1, 2, : model.nq].numpy())
    np.testing.assert_array_equal(d.qvel, got[-1, 2, model.nq :].numpy())


def test_reset_some_envs_leaves_others_untouched(model):
    n = 5
    qvel = _kick(n, model.nv, seed=3)
    a, b = CpuSim(model, n, num_threads=2), CpuSim(model, n, num_threads=2)
    for sim in (a, b):
        sim.reset(qvel=qvel)
        for _ in range(20):
            sim.step(2)
    home_qpos = a.qpos[0].clone()  # not needed beyond shape
    a.reset([1, 3])
    keep = [0, 2, 4]
    assert torch.equal(a.qpos[keep], b.qpos[keep]) and torch.equal(a.qvel[keep], b.qvel[keep])
    key = torch.from_numpy(model.key_qpos[0])
    assert torch.equal(a.qpos[[1, 3]], key.expand(2, -1))
    assert torch.all(a.qvel[[1, 3]] == 0) and torch.all(a.time[[1, 3]] == 0)
    assert torch.all(a.ctrl[[1, 3]] == 0.3)  # keyframe targets restored
    for _ in range(10):  # and the untouched envs keep evolving identically
        a.step(2)
        b.step(2)
    assert torch.equal(a.qpos[keep], b.qpos[keep])
    assert home_qpos.shape == (model.nq,)


def test_heavier_body_falls_the_same_but_pushes_harder(model):
    sim = CpuSim(model, 2, num_threads=2)
    box = model.body("box").id
    masses = np.tile(model.body_mass, (2, 1))
    masses[1, box] *= 3.0
    sim.set_params("body_mass", masses)
    sim.reset()
    for _ in range(50):  # 0.1 s of free fall
        sim.step(2)
    z = sim.qpos[:, 2]
    assert torch.allclose(z[0], z[1], atol=1e-9) and z[0] < 0.5
    for _ in range(500):  # land and settle
        sim.step(2)
    fz = sim.contact_force[:, box, 2]
    g = -model.opt.gravity[2]
    assert fz[0] == pytest.approx(1.0 * g, rel=0.02)
    assert fz[1] == pytest.approx(3.0 * g, rel=0.02)
    assert torch.allclose(sim.body_pos[:, box], sim.qpos[:, :3])


def test_stronger_motor_tracks_faster(model):
    sim = CpuSim(model, 2, num_threads=1)
    sim.set_params("actuator_kp", np.array([[5.0], [80.0]]))
    sim.reset()
    sim.ctrl[:] = 1.0
    for _ in range(50):
        sim.step(2)
    err = (1.0 - sim.qpos[:, 7]).abs()
    assert err[1] < 0.5 * err[0]
    assert torch.equal(
        sim.get_params("actuator_kp")[:, 0], torch.tensor([5.0, 80.0], dtype=torch.float64)
    )


def test_friction_reaches_the_physics(model):
    sim = CpuSim(model, 2, num_threads=2)
    fr = np.tile(model.geom_friction, (2, 1, 1))
    fr[1, :, 0] = 0.05
    sim.set_params("geom_friction", fr)
    qpos = np.tile(model.key_qpos[0], (2, 1))
    qpos[:, 2] = 0.1  # resting on the floor
    qvel = np.zeros((2, model.nv))
    qvel[:, 0] = 2.0
    sim.reset(qpos=qpos, qvel=qvel)
    for _ in range(250):
        sim.step(2)
    slid = sim.qpos[:, 0]
    assert slid[1] > 2 * slid[0]


def test_every_param_round_trips(model):
    sim = CpuSim(model, 3, num_threads=1)
    for name in PARAMS:
        vals = sim.get_params(name) * 1.5 + 0.01
        sim.set_params(name, vals)
        assert torch.allclose(sim.get_params(name), vals), name


def test_bad_input_is_rejected_with_a_clear_error(model):
    sim = CpuSim(model, 2, num_threads=1)
    with pytest.raises(KeyError, match="unknown physics parameter 'mass'"):
        sim.set_params("mass", np.ones((2, 3)))
    with pytest.raises(
        ValueError, match=r"body_mass: values have shape \(2, 2\), expected \(2, 3\)"
    ):
        sim.set_params("body_mass", np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        sim.set_params("dof_damping", np.full((2, model.nv), np.nan))
    with pytest.raises(ValueError, match=r"qpos has shape"):
        sim.reset([0], qpos=np.zeros((1, 3)))
    with pytest.raises(IndexError, match="outside"):
        sim.reset([5])
    with pytest.raises(ValueError, match="unknown physics backend 'tpu'"):
        make_sim(model, 2, backend="tpu")


def test_divergence_is_flagged_and_cleared_by_reset(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes its warning log to the working directory
    sim = CpuSim(model, 2, num_threads=1)
    sim.set_params("dof_armature", np.zeros((1, model.nv)), env_ids=[1])
    sim.set_params("actuator_kp", np.array([[1e12]]), env_ids=[1])
    sim.reset()
    sim.ctrl[:] = 2.0
    for _ in range(20):
        sim.step(5)
    assert sim.diverged.tolist() == [False, True]
    assert torch.isfinite(sim.qpos).all()
    sim.reset([1])
    assert not sim.diverged.any()


def test_multibody_flat_index_and_padding(model):
    pend = mujoco.MjModel.from_xml_string(PENDULUM)
    multi = MultiBodySim([model, pend], [3, 2], num_threads=2)
    assert multi.num_envs == 5 and multi.max_nu == 2 and multi.max_nq == 8
    assert multi.group_ids.tolist() == [0, 0, 0, 1, 1]
    assert multi.action_mask.tolist() == [[True, False]] * 3 + [[True, True]] * 2
    assert [(g, ids.tolist()) for g, ids in multi.split([4, 0, 2])] == [(0, [0, 2]), (1, [1])]
    actions = torch.tensor([[0.5, 9.0]] * 3 + [[1.0, -1.0]] * 2, dtype=torch.float64)
    multi.set_ctrl(actions)
    assert torch.equal(multi.padded("ctrl"), actions * multi.action_mask)
    for _ in range(20):
        multi.step(2)
    before = multi.padded("qpos")
    multi.reset([3])
    after = multi.padded("qpos")
    assert torch.equal(after[3], torch.zeros(8)) and torch.equal(
        after[[0, 1, 2, 4]], before[[0, 1, 2, 4]]
    )
    assert not torch.equal(before[4], torch.zeros(8))
    with pytest.raises(ValueError, match="expected \\(5, 2\\)"):
        multi.set_ctrl(torch.zeros(5, 3))


def test_centre_of_mass_offset_reaches_the_physics(model):
    sim = CpuSim(model, 2, num_threads=1)
    box = model.body("box").id
    ipos = np.tile(model.body_ipos, (2, 1, 1))
    ipos[1, box, 0] = 0.15  # beyond the 0.1 m half-width: no longer supported
    sim.set_params("body_ipos", ipos)
    qpos = np.tile(model.key_qpos[0], (2, 1))
    qpos[:, 2] = 0.1
    sim.reset(qpos=qpos)
    for _ in range(400):
        sim.step(2)
    tilt = 1 - sim.body_quat[:, box, 0].abs()  # 0 when upright
    assert tilt[0] < 1e-4 and tilt[1] > 0.05


@pytest.mark.parametrize("body_class", bodies.names())
def test_generated_bodies_batch_equals_solo_runs(body_class):
    emb = bodies.sample(body_class, seed=4)
    model = emb.compile()
    n, steps = 4, 40
    rng = np.random.default_rng(0)
    lo, hi = np.array(emb.action.low), np.array(emb.action.high)
    lo, hi = np.maximum(lo, -5.0), np.minimum(hi, 5.0)
    ctrl = torch.from_numpy(rng.uniform(lo, hi, (steps, n, model.nu)))
    batch = CpuSim(model, n, num_threads=2)
    got = _rollout(batch, ctrl, substeps=4)
    assert torch.isfinite(got).all() and not batch.diverged.any()
    solo = CpuSim(model, 1, num_threads=1)
    for i in (0, n - 1):
        solo.reset()
        assert torch.equal(_rollout(solo, ctrl[:, i : i + 1], substeps=4)[:, 0], got[:, i])


def test_mocap_positions_are_per_env_and_survive_steps():
    xml = """<mujoco><worldbody><body name="m" mocap="true"><geom size=".1" contype="0"
    conaffinity="0"/></body><body><freejoint/><geom size=".1"/></body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    sim = CpuSim(model, 3, num_threads=2)
    sim.reset([0, 2], mocap_pos=np.array([[[1.0, 2.0, 3.0]], [[-1.0, 0.0, 0.5]]]))
    for _ in range(5):
        sim.step(2)
    sim.reset([1])  # another env's reset leaves them alone
    m = model.body("m").id
    assert torch.allclose(
        sim.body_pos[:, m],
        torch.tensor([[1.0, 2, 3], [0, 0, 0], [-1, 0, 0.5]], dtype=torch.float64),
    )
    with pytest.raises(ValueError, match="mocap_pos has shape"):
        sim.reset([0], mocap_pos=np.zeros((1, 2, 3)))
