"""Integrity of every registered body generator: the registry's contract, for all classes."""

from __future__ import annotations

import dataclasses
from functools import cache

import mujoco
import numpy as np
import pytest

from xembody.sim import bodies
from xembody.sim.bodies import registry

SEEDS = range(12)
CLASSES = pytest.mark.parametrize("body_class", bodies.names())


@cache
def sample(body_class: str, seed: int):
    return bodies.sample(body_class, seed=seed)


def test_every_class_is_registered():
    assert bodies.names() == ["arm", "humanoid", "quadruped", "wheeled"]


@CLASSES
def test_samples_compile_with_params_inside_declared_ranges(body_class):
    ranges_type = bodies.get(body_class).ranges_type
    ranges = ranges_type()
    names = {f.name for f in dataclasses.fields(ranges_type)}
    for seed in SEEDS:
        emb = sample(body_class, seed)
        assert emb.body_class == body_class
        assert emb.source == f"generator:{body_class}(seed={seed})"
        assert set(emb.params) == names
        for name in names:
            lo, hi = getattr(ranges, name)
            value = emb.params[name]
            for v in value if isinstance(value, list) else [value]:
                assert isinstance(v, int | float) and lo <= v <= hi, (seed, name, v, (lo, hi))
        m = emb.compile()
        assert m.key("home").id == 0
        assert m.body(emb.sensors.base_body).id > 0
        if emb.sensors.imu_site:
            assert all(m.sensor(s).id >= 0 for s in ("imu_gyro", "imu_acc", "imu_quat"))
        if emb.sensors.camera:
            assert m.camera(emb.sensors.camera).id >= 0
        if emb.sensors.ee_site:
            assert m.site(emb.sensors.ee_site).id >= 0


@CLASSES
def test_same_seed_same_body_and_different_seeds_differ(body_class):
    assert bodies.sample(body_class, seed=5).mjcf == sample(body_class, 5).mjcf
    assert bodies.sample(body_class, seed=5).params == sample(body_class, 5).params
    assert len({sample(body_class, s).mjcf for s in SEEDS}) == len(SEEDS)


@CLASSES
def test_actuators_follow_the_joint_facts(body_class):
    for seed in SEEDS:
        emb = sample(body_class, seed)
        m = emb.compile()
        assert m.nu == emb.num_actions == emb.action.dim
        position = emb.action.kind == "joint_position"
        for i, info in enumerate(emb.joints):
            assert m.actuator(i).name == info.name
            assert m.joint(int(m.actuator_trnid[i, 0])).name == info.name
            assert tuple(m.actuator_forcerange[i]) == (-info.effort_limit, info.effort_limit)
            if position:
                assert m.actuator_gainprm[i, 0] == info.kp and m.actuator_biasprm[i, 1] == -info.kp
                assert m.actuator_biasprm[i, 2] == -info.kd
                np.testing.assert_allclose(m.actuator_ctrlrange[i], info.range)
            else:
                assert m.actuator_gainprm[i, 0] == info.kd
        # the home key puts the body in its default pose and holds it there
        qadr = [m.jnt_qposadr[m.joint(n).id] for n in emb.joint_names]
        np.testing.assert_allclose(m.key_qpos[0][qadr], emb.default_pose, atol=1e-12)
        want_ctrl = emb.default_pose if position else np.zeros(m.nu)
        np.testing.assert_allclose(m.key_ctrl[0], want_ctrl, atol=1e-12)


def test_range_overrides_and_bad_ids():
    arm = bodies.sample("arm", seed=1, n_joints=(7, 7))
    assert arm.params["n_joints"] == 7 and len(arm.joints) == 8  # 7 joints + gripper
    with pytest.raises(KeyError, match="unknown body class 'octopus'"):
        bodies.sample("octopus")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("arm", object, "again")(lambda seed, ranges: None)


def test_written_body_round_trips(tmp_path):
    emb = sample("quadruped", 2)
    path = emb.write(tmp_path / "q.xml")
    m = mujoco.MjModel.from_xml_path(str(path))
    assert m.nu == emb.num_actions
    assert (tmp_path / "q.xml.json").exists()
