"""The joint-token student's input normalisation and body-level context (models/joint_policy.py)."""

from __future__ import annotations

import torch

from xembody.models.joint_policy import BODY_DESC_DIM, JOINT_DESC_DIM, JointTokenPolicy


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
