"""A policy trained on a vendor robot file, exported, and run on the robot side with the
original files gone: the export folder alone rebuilds the body (bundled body.xml and its
meshes), and the robot-side observation equals the sim env's for the same states.

Each case copies a fixture of tests/assets/robots to a temporary vendor folder, trains
2 PPO iterations on it through the CLI, exports through the CLI, builds the sim env of the
run, then deletes the vendor folder, the run and the first export (a copy of the export
lives elsewhere) and drives the sim with `PolicyController` loaded from that copy: each
control period the controller builds its observation from what a robot driver reports
(joints by name, IMU, odometry; `tests/test_real_core.py`) and the sim steps with the
controller's raw action.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from test_real_core import command_from_task, reach_obs_at_current_state, reading_from_env

from xembody.cli import main
from xembody.models.run import Run, make_env
from xembody.real.controller import PolicyController
from xembody.real.ros.common import load_body
from xembody.sim.bodies import reference as body_ref

ROBOTS = Path(__file__).parent / "assets" / "robots"
STEPS = 12  # control periods compared per case


@pytest.fixture(autouse=True)
def _mesh_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XEMBODY_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize(
    ("task", "package", "robot", "extra"),
    [
        ("reach", "fixture_arm_description", "urdf/arm6.urdf", ["--ee", "tool0"]),
        ("velocity", "fixture_quad_description", "urdf/quad.urdf", ["--card", "urdf/quad.yaml"]),
    ],
)
def test_exported_fixture_policy_runs_without_the_original_files(
    task: str, package: str, robot: str, extra: list[str], tmp_path: Path, monkeypatch
) -> None:
    vendor = tmp_path / "vendor" / package
    shutil.copytree(ROBOTS / package, vendor)
    extra = [str(vendor / e) if e.endswith(".yaml") else e for e in extra]
    argv = ["train", "--task", task, "--body", str(vendor / robot), *extra, "--num-envs", "8"]
    argv += ["--iterations", "2", "--steps-per-env", "8", "--threads", "1"]
    assert main([*argv, "--log-root", str(tmp_path / "runs"), "--run-name", "t"]) == 0
    (run_dir,) = (tmp_path / "runs").glob("*/t")
    first = tmp_path / "export"
    assert main(["export", "--checkpoint", str(run_dir), "--out", str(first)]) == 0
    moved = shutil.copytree(first, tmp_path / "elsewhere" / "policy")

    env = make_env(Run.load(run_dir), 1, seed=2, threads=1, randomize=False)  # the sim
    for gone in (tmp_path / "vendor", run_dir.parent, first):
        shutil.rmtree(gone)
    monkeypatch.chdir(tmp_path / "elsewhere")
    spec = mujoco.MjSpec.from_file(str(moved / "body.xml"))  # names no file outside the bundle
    for asset in (*spec.meshes, *spec.textures, *spec.hfields, *spec.skins):
        assert not asset.file or (moved / asset.file).resolve().is_relative_to(moved.resolve())

    emb = load_body("", 0, str(moved))  # the robot side: from the bundle only
    model = emb.compile()
    # the bundled file read as a body file (what `xembody eval --transfer`'s robot-side
    # rows and the real-proxy do) also finds its assets/ from another folder
    assert body_ref.resolve_body(str(moved / "body.xml")).compile().nmesh == model.nmesh
    assert emb.joint_names == env.task.emb.joint_names
    assert model.nq == env.sim.model.nq and model.nmesh == env.sim.model.nmesh
    if task == "reach":
        assert model.nmesh > 0  # the package:// STL meshes travelled in the bundle
        assert env.task.emb.sensors.ee_site == emb.sensors.ee_site
    controller = PolicyController.load(moved, emb=emb)
    contract = controller.policy.contract
    assert contract["body"]["source"] and not Path(contract["body"]["source"]).exists()

    env.reset()
    controller.reset(phase=float(env.task.phase[0]) if task == "velocity" else 0.0)
    worst = 0.0
    for _ in range(STEPS):
        obs = env.get_observations()  # the critic's first columns: the policy's, noise-free
        want = obs["critic"][0, : obs["policy"].shape[1]].numpy()
        if task == "reach":
            want = reach_obs_at_current_state(env, contract, want)
        controller.step(reading_from_env(env), command_from_task(env.task))
        assert controller.obs.shape == want.shape
        worst = max(worst, float(np.abs(controller.obs - want).max()))
        _, _, dones, _ = env.step(torch.from_numpy(controller.action).float()[None])
        assert not dones.any()  # one episode throughout: no reset to mirror
    env.close()
    assert worst <= 1e-5, worst
