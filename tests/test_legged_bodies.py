"""Procedural legged bodies: humanoid and quadruped generators."""

from __future__ import annotations

import functools
from collections.abc import Callable

import mujoco
import numpy as np
import pytest

from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.bodies.humanoid import HumanoidRanges, sample_humanoid
from xembody.sim.bodies.quadruped import QuadrupedRanges, sample_quadruped

SEEDS = range(20)
STABILITY_SEEDS = range(10)
GENERATORS: dict[str, tuple[Callable[[int, object], Embodiment], type]] = {
    "humanoid": (sample_humanoid, HumanoidRanges),
    "quadruped": (sample_quadruped, QuadrupedRanges),
}


@functools.cache
def body(kind: str, seed: int) -> Embodiment:
    fn, ranges_type = GENERATORS[kind]
    return fn(seed, ranges_type())


@functools.cache
def model(kind: str, seed: int) -> mujoco.MjModel:
    return body(kind, seed).compile()


def hold_home(kind: str, seed: int, seconds: float = 2.0) -> tuple[mujoco.MjData, float]:
    """Start at the "home" key, hold the default pose as PD target; return data, start z."""
    emb, m = body(kind, seed), model(kind, seed)
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
    d.ctrl[:] = emb.default_pose
    mujoco.mj_forward(m, d)
    z0 = float(d.xpos[m.body(emb.sensors.base_body).id][2])
    for _ in range(round(seconds / m.opt.timestep)):
        mujoco.mj_step(m, d)
    return d, z0


def warnings(d: mujoco.MjData) -> int:
    return sum(int(d.warning[i].number) for i in range(len(d.warning)))


KINDS = pytest.mark.parametrize("kind", sorted(GENERATORS))


def test_integer_ranges_are_ints() -> None:
    for seed in SEEDS:
        n = body("humanoid", seed).params["arm_joints"]
        assert isinstance(n, int) and n in (3, 4)
    assert {body("humanoid", s).params["arm_joints"] for s in SEEDS} == {3, 4}


def test_humanoid_joint_counts() -> None:
    for seed in SEEDS:
        emb = body("humanoid", seed)
        names = emb.joint_names
        n_arm = emb.params["arm_joints"]
        for side in ("left", "right"):
            leg = [
                n
                for n in names
                if n.startswith(side) and ("hip" in n or "knee" in n or "ankle" in n)
            ]
            arm = [n for n in names if n.startswith(side) and ("shoulder" in n or "elbow" in n)]
            assert len(leg) == 6 and f"{side}_knee" in leg
            assert len(arm) == n_arm and f"{side}_elbow" in arm
        assert len(names) == 12 + 2 * n_arm
        assert model("humanoid", seed).njnt == len(names) + 1  # + free root


def test_quadruped_joint_counts() -> None:
    for seed in SEEDS:
        emb, m = body("quadruped", seed), model("quadruped", seed)
        assert emb.num_actions == 12 and m.njnt == 13
        for leg in ("FL", "FR", "RL", "RR"):
            assert [n for n in emb.joint_names if n.startswith(leg)] == [
                f"{leg}_hip_abduction",
                f"{leg}_hip_pitch",
                f"{leg}_knee",
            ]
            assert m.site(f"{leg}_foot").id >= 0


@KINDS
def test_home_pose_feet_touch_floor(kind: str) -> None:
    for seed in STABILITY_SEEDS:
        emb, m = body(kind, seed), model(kind, seed)
        d = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, d, 0)
        mujoco.mj_forward(m, d)
        feet = [m.geom(i).name for i in range(m.ngeom) if m.geom(i).name.endswith("foot_geom")]
        assert len(feet) == (2 if kind == "humanoid" else 4)
        for g in feet:
            gid = m.geom(g).id
            if m.geom_type[gid] == mujoco.mjtGeom.mjGEOM_SPHERE:
                bottom = d.geom_xpos[gid][2] - m.geom_size[gid][0]
            else:
                bottom = d.geom_xpos[gid][2] - m.geom_size[gid][2]
            assert 0.0 <= bottom < 0.005, (emb.name, g, bottom)


@pytest.mark.parametrize("seed", STABILITY_SEEDS)
def test_quadruped_stands(seed: int) -> None:
    d, z0 = hold_home("quadruped", seed)
    assert np.isfinite(d.qpos).all() and warnings(d) == 0
    assert d.qpos[2] > 0.6 * z0


@pytest.mark.parametrize("seed", STABILITY_SEEDS)
def test_humanoid_does_not_explode(seed: int) -> None:
    d, _ = hold_home("humanoid", seed)
    assert np.isfinite(d.qpos).all() and np.isfinite(d.qvel).all() and warnings(d) == 0
    assert np.abs(d.qvel).max() < 50.0
    assert d.qpos[2] > 0.0
