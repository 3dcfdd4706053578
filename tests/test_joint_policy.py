"""The joint-token student's input normalisation, body-level context and joint descriptors
(models/joint_policy.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xembody.models.joint_policy import (
    BODY_DESC_DIM,
    JOINT_DESC_DIM,
    ROOT_FRAME_DIM,
    SUBTREE_DIM,
    JointTokenPolicy,
    joint_descriptors,
)
from xembody.models.run import resolve_body


def _inputs(b: int = 64, j: int = 5, c: int = 3, g: int = 7, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    joint = 3.0 + 5.0 * torch.randn(b, j, c, generator=gen)  # far from zero mean, unit spread
    glob = -2.0 + 0.1 * torch.randn(b, g, generator=gen)
    mask = torch.ones(b, j, dtype=torch.bool)
    mask[: b // 2, -1] = False  # half the batch is a body of one joint fewer
    return (
        joint,
        torch.randn(b, j, JOINT_DESC_DIM, generator=gen),
        mask,
        glob,
        torch.randn(b, BODY_DESC_DIM, generator=gen),
    )


def test_fitted_normalisation_equals_feeding_standardised_inputs():
    torch.manual_seed(0)
    joint, jd, mask, glob, bd = _inputs()
    fitted = JointTokenPolicy(3, 7)
    plain = JointTokenPolicy(3, 7)
    plain.load_state_dict(fitted.state_dict())  # same weights, identity normalisation
    fitted.fit_normalization(joint[mask], glob)
    assert torch.allclose(fitted.joint_mean, joint[mask].mean(0))
    assert (fitted.joint_std > 4.0).all() and (fitted.global_std < 0.2).all()
    mean, std = joint[mask].mean(0), joint[mask].std(0)
    standard = ((joint - mean) / std, jd, mask, (glob - glob.mean(0)) / glob.std(0), bd)
    with torch.no_grad():
        a, _ = fitted(joint, jd, mask, glob, bd)
        b, _ = plain(*standard)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the statistics are saved with the weights
    again = JointTokenPolicy(3, 7)
    again.load_state_dict(fitted.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(again(joint, jd, mask, glob, bd)[0], a)


def test_weights_saved_before_the_normalisation_load_as_the_identity():
    torch.manual_seed(0)
    policy = JointTokenPolicy(3, 7)
    old = {k: v for k, v in policy.state_dict().items() if "_mean" not in k and "_std" not in k}
    loaded = JointTokenPolicy(3, 7)
    loaded.fit_normalization(torch.randn(10, 3) * 9, torch.randn(10, 7) * 9)  # not identity
    loaded.load_state_dict(old)
    assert torch.equal(loaded.joint_std, torch.ones(3))
    assert torch.equal(loaded.global_mean, torch.zeros(7))
    inputs = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(*inputs)[0], policy(*inputs)[0])


def test_global_to_joints_lets_a_joint_action_read_the_clock_without_attention():
    # No attention layers: a joint's action comes from its own token only. Without the
    # option, changing the body-level inputs (a gait clock, a command) cannot move it.
    torch.manual_seed(0)
    joint, jd, mask, glob, bd = _inputs()
    other = glob + 1.0
    for to_joints, moves in ((False, False), (True, True)):
        policy = JointTokenPolicy(3, 7, layers=0, global_to_joints=to_joints)
        with torch.no_grad():
            a = policy(joint, jd, mask, glob, bd)[0]
            b = policy(joint, jd, mask, other, bd)[0]
        assert (not torch.equal(a, b)) == moves
        assert (a[~mask] == 0).all() and (b[~mask] == 0).all()  # padded joints stay silent


@pytest.mark.parametrize(
    "spec", ["quadruped", "tests/assets/robots/fixture_quad_description/urdf/quad.urdf"]
)
def test_root_frame_descriptors_tell_every_leg_joint_apart(spec):
    """A generated quadruped's four knees share axis, limits and parent offset, and so do
    its front and rear hip-pitch joints on one side: without their place on the body the
    student cannot tell which leg a token belongs to (a trot moves diagonal legs together).
    With root_frame every joint's descriptor is its own, the anchors mirror left to right,
    and the student takes the wider descriptor."""
    emb = resolve_body(spec, 2) if spec == "quadruped" else resolve_body(spec)
    model, names = emb.compile(), list(emb.joint_names)
    plain = joint_descriptors(model, names)
    placed = joint_descriptors(model, names, root_frame=True)
    assert placed.shape == (12, JOINT_DESC_DIM + ROOT_FRAME_DIM)
    np.testing.assert_array_equal(placed[:, :JOINT_DESC_DIM], plain)
    assert len({r.tobytes() for r in placed}) == 12
    if spec == "quadruped":
        assert len({r.tobytes() for r in plain}) < 12  # the defect root_frame fixes
    # legs FL, FR, RL, RR of three joints each, the knee (calf) last
    fl, fr, rl = (placed[i, JOINT_DESC_DIM:] for i in (2, 5, 8))
    assert names[2].startswith("FL") and names[8].startswith("RL")
    assert fl[0] > 0 > rl[0]  # front ahead of the root, rear behind
    np.testing.assert_allclose(fl * [1, -1, 1], fr, atol=1e-6)
    policy = JointTokenPolicy(3, 4, joint_desc_dim=placed.shape[1])
    b = 2
    actions, _ = policy(
        torch.zeros(b, 12, 3), torch.from_numpy(placed).expand(b, -1, -1),
        torch.ones(b, 12, dtype=torch.bool), torch.zeros(b, 4), torch.zeros(b, BODY_DESC_DIM),
    )  # fmt: skip
    assert actions.shape == (b, 12)
    assert len(set(actions[0].tolist())) == 12  # each knee's token differs at the input


def test_subtree_descriptors_see_the_shank():
    """The shank (knee to foot) is the last link of a leg: no joint's parent offset or
    anchor holds its length, so without `subtree` the geometry in the knee's descriptor of
    a quadruped with 0.36 m shanks is that of one with 0.25 m shanks (only the gains the
    generator scales with the leg differ). With it the knee's descriptor holds the
    centre of mass of what it moves: lower (root frame) on the longer shank."""
    from xembody.sim import bodies

    short = bodies.sample("quadruped", seed=2, calf_length=(0.25, 0.25))
    long = bodies.sample("quadruped", seed=2, calf_length=(0.36, 0.36))
    knee = [n for n in short.joint_names if n.startswith("FL")][-1]
    desc = {
        name: [joint_descriptors(e.compile(), [knee], root_frame=True, subtree=s)[0]
               for s in (False, True)]
        for name, e in (("short", short), ("long", long))
    }  # fmt: skip
    where = [5, 6, 7, *range(JOINT_DESC_DIM, JOINT_DESC_DIM + ROOT_FRAME_DIM)]  # geometry
    np.testing.assert_array_equal(desc["short"][0][where], desc["long"][0][where])  # blind
    assert desc["long"][1].shape == (JOINT_DESC_DIM + ROOT_FRAME_DIM + SUBTREE_DIM,)
    com_short, com_long = desc["short"][1][-SUBTREE_DIM:], desc["long"][1][-SUBTREE_DIM:]
    assert com_long[2] < com_short[2] < 0  # the shank hangs below the knee at qpos0
    assert com_long[3] == com_short[3] > 0  # log mass (the generator's leg mass is fixed)


def test_descriptor_entries_constant_in_training_are_pinned_for_a_vendor_file():
    """Every generated quadruped's motors have armature 0.01; the fixture URDF (like any
    URDF) has none. The student never saw that entry vary, so its weights on it act as a
    constant: a zero there shifts every joint token of the URDF body by an amount nothing
    trained. `fit_descriptors` pins such entries to their training value; entries that
    varied still reach the network."""
    from pathlib import Path

    from xembody.sim import bodies
    from xembody.sim.bodies.for_training import load_for_training

    arm = 11  # log1p(1e3 * armature)
    rows = []
    for seed in (2, 3, 8):
        emb = bodies.sample("quadruped", seed=seed)
        rows.append(joint_descriptors(emb.compile(), emb.joint_names, root_frame=True))
    train = torch.from_numpy(np.concatenate(rows))
    urdf = Path(__file__).parent / "assets/robots/fixture_quad_description/urdf/quad.urdf"
    emb = load_for_training(str(urdf))
    vendor = torch.from_numpy(joint_descriptors(emb.compile(), emb.joint_names, root_frame=True))
    assert (train[:, arm] == train[0, arm]).all() and train[0, arm] > 2.0
    assert (vendor[:, arm] == 0).all()  # the URDF's: no armature

    torch.manual_seed(0)
    student = JointTokenPolicy(3, 7, joint_desc_dim=train.shape[1])
    student.fit_descriptors(train)
    assert student.desc_fixed[arm] and not student.desc_fixed[3]  # armature pinned, range not
    j = len(emb.joint_names)
    joint, _, _, glob, body = _inputs(b=4, j=j)
    mask = torch.ones(4, j, dtype=torch.bool)
    as_trained = vendor.clone()
    as_trained[:, arm] = train[0, arm]
    wider = vendor.clone()
    wider[:, 3] -= 0.5  # a lower joint limit: an entry that varied in training
    cases = {"vendor": vendor, "as_trained": as_trained, "wider": wider}
    with torch.no_grad():
        out = {k: student(joint, d.expand(4, -1, -1), mask, glob, body)[0]
               for k, d in cases.items()}  # fmt: skip
    torch.testing.assert_close(out["vendor"], out["as_trained"])
    assert not torch.allclose(out["vendor"], out["wider"])
    # saved with the weights; weights from before the pinning keep the module's fit
    old = {k: v for k, v in student.state_dict().items() if not k.startswith("desc_")}
    again = JointTokenPolicy(3, 7, joint_desc_dim=train.shape[1])
    again.fit_descriptors(train)
    again.load_state_dict(old)
    assert torch.equal(again.desc_fixed, student.desc_fixed)


def test_descriptor_noise_keeps_the_student_from_keying_on_exact_descriptors():
    """Two bodies that differ only in one descriptor entry, with the same observations and
    opposite teacher actions. Fitted on clean descriptors the student tells them apart
    exactly; with descriptor noise of the entry's spread it can only tell them apart as
    far as the noisy descriptors do, so its outputs on the clean ones move towards each
    other. A held-out body whose descriptors sit between or near the training bodies'
    then gets a blend, not one training body's exact gait."""
    import dataclasses

    from xembody.models.generalist import BodyBinding, BodyData, BoundStudent, fit, make_student
    from xembody.sim import bodies, tasks

    env = tasks.make_env("velocity", bodies.sample("quadruped", seed=2), 4, seed=0,
                         num_threads=1)  # fmt: skip
    a = BodyBinding.from_env(env, ())
    kd = 9  # log1p(kd)
    b = dataclasses.replace(a, joint_desc=a.joint_desc.clone())
    b.joint_desc[:, kd] += 1.0
    obs = torch.randn(256, a.obs_dim)
    ones = torch.ones(256, a.num_actions)
    env.close()
    gaps = {}
    for noise in (0.0, 1.0):
        torch.manual_seed(0)
        student = make_student(a, dim=32, layers=1)
        data = [BodyData(a, obs, 0.5 * ones), BodyData(b, obs, -0.5 * ones)]
        loss = fit(student, data, epochs=100, desc_noise=noise, log=lambda _: None)
        with torch.no_grad():
            out = [BoundStudent(student, x).eval()(obs[:64]).mean().item() for x in (a, b)]
        gaps[noise] = out[0] - out[1]
        if noise == 0.0:
            assert loss < 0.01
    assert gaps[0.0] > 0.9  # clean: the two bodies' actions, +0.5 and -0.5
    assert gaps[1.0] < 0.8 * gaps[0.0], gaps
