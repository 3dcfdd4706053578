"""Behaviour of the batched CPU backend on small hand-made models."""

import mujoco
import numpy as np
import pytest
import torch
from scenes import BOX_AND_ARM

from xembody.sim import bodies
from xembody.sim.physics import CpuSim, MultiBodySim

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
