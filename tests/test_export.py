"""Exported policies (ONNX, TorchScript, sidecar) and checkpoints that resume exactly.

One tiny reach policy is trained once per module (16 envs, 2 iterations of 8 steps) so the
observation normaliser holds real statistics; everything else reads its checkpoint.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
import torch
from rsl_rl.runners import OnPolicyRunner

from xembody.cli import main
from xembody.models.export import export_policy
from xembody.models.exported import FORMAT, SIDECAR_FILE, ExportedPolicy
from xembody.models.ppo import PPOConfig, rsl_rl_config
from xembody.models.run import Run, latest_checkpoint, make_env, resolve_body
from xembody.models.training import TrainConfig, train
from xembody.sim import tasks

TINY = dict(task="reach", num_envs=16, iterations=2, steps_per_env=8, threads=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(**TINY, log_root=str(root), run_name="tiny"))


@pytest.fixture(scope="module")
def exported(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export")
    return out, export_policy(trained, out)


def quiet_runner(run: Run, env: Any, log_dir: str | None = None) -> OnPolicyRunner:
    return OnPolicyRunner(env, rsl_rl_config(run.ppo), log_dir=log_dir, device="cpu")


# --- the exported networks ----------------------------------------------------------------
@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_exported_network_matches_the_torch_policy(trained, exported, backend):
    folder, _ = exported
    ckpt = latest_checkpoint(trained)
    run = Run.load(ckpt)
    env = make_env(run, 8, seed=3, threads=1)
    runner = quiet_runner(run, env)
    runner.load(str(ckpt))
    policy = runner.get_inference_policy()
    assert int(policy.obs_normalizer.count) > 0  # normalisation is really exercised
    obs = env.get_observations()
    with torch.inference_mode():
        for _ in range(5):  # real observations, a few steps into the episodes
            obs, *_ = env.step(policy(obs) + 0.3 * torch.randn(8, env.num_actions))
        expected = policy(obs).numpy()
    env.close()

    exported_policy = ExportedPolicy.load(folder, backend=backend)
    x = obs["policy"].numpy()
    np.testing.assert_allclose(exported_policy(x), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(exported_policy(x[2]), expected[2], atol=1e-5, rtol=0)
    assert exported_policy(x).dtype == np.float32 and exported_policy(x[2]).shape == (7,)


def test_sidecar_describes_the_task(trained, exported):
    folder, contract = exported
    assert json.loads((folder / SIDECAR_FILE).read_text()) == contract
    run = Run.load(trained)
    env = make_env(run, 1, threads=1)
    task = env.task
    terms = contract["observation"]["terms"]
    assert contract["format"] == FORMAT and contract["task"] == "reach"
    assert [t["name"] for t in terms] == [t.name for t in task.obs_terms()]
    assert (
        sum(t["size"] for t in terms)
        == contract["obs_dim"]
        == env.get_observations()["policy"].shape[1]
    )
    assert [t["start"] for t in terms] == np.cumsum([0] + [t["size"] for t in terms])[:-1].tolist()
    assert {t["name"]: t["units"] for t in terms}["joint_vel"] == "rad/s"
    assert contract["joint_names"] == list(task.joint_names) and "gripper" not in task.joint_names
    assert contract["default_pose"] == pytest.approx(task.default_pose.tolist())
    assert contract["num_actions"] == task.num_actions == 7
    action = contract["action"]
    assert action["mapping"] == "joint_position_offset"
    assert (action["action_scale"], action["action_clip"]) == (
        run.task_cfg.action_scale,
        run.task_cfg.action_clip,
    )
    assert contract["control_hz"] == run.task_cfg.control_hz
    assert (
        contract["checkpoint"]["iteration"] == 1 and contract["checkpoint"]["file"] == "model_1.pt"
    )
    assert contract["body"]["name"] == run.body.name and contract["body"]["class"] == "arm"
    env.close()


def test_sidecar_states_conventions_limits_and_bundles_the_body(trained, exported):
    """Format /2: the body's MJCF travels with the policy, with per-joint limits and gains;
    the IMU-free arm names its end-effector site in that model; every term has a formula."""
    folder, contract = exported
    run = Run.load(trained)
    emb = run.body
    body = contract["body"]
    assert (folder / body["model"]).read_text() == emb.mjcf  # exactly what it trained on
    model = mujoco.MjModel.from_xml_path(str(folder / body["model"]))
    assert model.nq == emb.compile().nq
    joints = {j["name"]: j for j in body["joints"]}
    assert list(joints) == list(emb.joint_names)
    for j in emb.joints:
        got = joints[j.name]
        assert (got["kp"], got["kd"], got["effort_limit"]) == (j.kp, j.kd, j.effort_limit)
        assert tuple(got["range"]) == j.range and got["velocity_limit"] == j.velocity_limit
    conv = contract["conventions"]
    assert conv["quaternion"].startswith("w, x, y, z")
    ee = conv["end_effector"]
    assert ee["site"] == emb.sensors.ee_site and ee["model"] == body["model"]
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, ee["site"]) >= 0
    assert conv["imu"] is None and conv["gait_clock"] is None  # a fixed arm: neither
    assert all(t["formula"] for t in contract["observation"]["terms"])
    assert contract["sha256"]["model"]


def test_bundled_body_with_meshes_loads_from_the_export_folder(tmp_path, monkeypatch):
    """A body loaded from a file with meshes: the meshes are copied beside body.xml, and the
    robot side rebuilds the body from the bundle, not from the original path."""
    from xembody.models.export import bundle_body
    from xembody.real.ros.common import load_body
    from xembody.sim.bodies.loader import load_body as load_file

    src = tmp_path / "src"
    (src / "meshes").mkdir(parents=True)
    (src / "meshes" / "cube.obj").write_text(CUBE_OBJ)
    (src / "robot.xml").write_text(MESH_ARM)
    emb = load_file(src / "robot.xml")
    out = tmp_path / "export"
    out.mkdir()
    assets = bundle_body(emb, out)
    assert assets == ["assets/0_cube.obj"] and (out / assets[0]).is_file()
    assert str(tmp_path) not in (out / "body.xml").read_text()  # the folder can move
    contract = {"format": FORMAT, "body": {"model": "body.xml", "assets": assets}}
    (out / SIDECAR_FILE).write_text(json.dumps(contract))
    shutil.rmtree(src)  # the original files are gone: only the bundle remains
    monkeypatch.chdir(tmp_path)
    again = load_body("", 0, str(out))
    model = again.compile()
    assert model.nmesh == 1 and again.joint_names == emb.joint_names
    assert mujoco.MjModel.from_xml_path(str(out / "body.xml")).nmesh == 1  # foreign runtimes


def as_format_1(src: Path, dst: Path) -> dict:
    """A copy of export `src` as format /1 wrote it: no conventions, formulas, joint facts
    or bundled body."""
    dst.mkdir()
    c = json.loads((src / SIDECAR_FILE).read_text())
    for name in ("policy.onnx", "policy.pt"):
        shutil.copyfile(src / name, dst / name)
    c["format"] = "xembody-policy/1"
    for key in ("conventions", "upgraded"):
        c.pop(key, None)
    for key in ("joints", "sensors", "model", "facts", "assets"):
        c["body"].pop(key)
    for key in ("model", "facts"):
        c["files"].pop(key)
        c["sha256"].pop(key)
    for t in c["observation"]["terms"]:
        t.pop("formula")
    (dst / SIDECAR_FILE).write_text(json.dumps(c, indent=2))
    return c


def test_old_exports_load_the_old_way_and_upgrade_in_place(exported, tmp_path):
    """A /1 folder (body rebuilt from body.source) still loads everywhere; upgrade_export
    brings it to /2 with the networks untouched and the contract a fresh export writes."""
    from xembody.models.export import upgrade_export
    from xembody.models.exported import read_contract
    from xembody.real.controller import PolicyController
    from xembody.real.ros.common import load_body

    folder, contract = exported
    old = tmp_path / "old"
    as_format_1(folder, old)
    assert read_contract(old)["format"] == "xembody-policy/1"
    emb = load_body("", 0, str(old))
    assert emb.mjcf == (folder / "body.xml").read_text()  # the same body, made again
    assert ExportedPolicy.load(old).num_actions == 7
    assert PolicyController.load(old).emb.joint_names == emb.joint_names
    onnx = (old / "policy.onnx").read_bytes()
    new = upgrade_export(old)
    assert (old / "policy.onnx").read_bytes() == onnx
    assert new["upgraded"]["from"] == "xembody-policy/1"
    for key in ("conventions", "observation", "action", "body", "sha256", "files"):
        assert new[key] == contract[key], key
    assert upgrade_export(old) == new  # already current: untouched
    bad = tmp_path / "bad"
    as_format_1(folder, bad)
    (bad / "policy.pt").write_bytes(b"not the network")
    with pytest.raises(ValueError, match="hash"):
        upgrade_export(bad)
    assert read_contract(bad)["format"] == "xembody-policy/1"  # left as it was


CUBE_OBJ = """v -0.05 -0.05 -0.05
v 0.05 -0.05 -0.05
v 0.05 0.05 -0.05
v -0.05 0.05 -0.05
v -0.05 -0.05 0.05
v 0.05 -0.05 0.05
v 0.05 0.05 0.05
v -0.05 0.05 0.05
f 1 2 3 4
f 5 6 7 8
f 1 2 6 5
f 2 3 7 6
f 3 4 8 7
f 4 1 5 8
"""
MESH_ARM = """<mujoco model="mesh_arm">
  <compiler angle="radian" meshdir="meshes"/>
  <asset><mesh name="cube" file="cube.obj"/></asset>
  <worldbody>
    <body name="base">
      <geom type="cylinder" size="0.05 0.05"/>
      <body name="link1" pos="0 0 0.1">
        <joint name="joint1" type="hinge" axis="0 0 1" range="-2 2"/>
        <geom type="mesh" mesh="cube"/>
        <site name="ee" pos="0 0 0.1"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_joint_names_map_by_name(exported):
    folder, contract = exported
    policy = ExportedPolicy.load(folder)
    robot = list(contract["body"]["joint_names"])  # includes the gripper the policy ignores
    random.Random(0).shuffle(robot)
    index = policy.check_joint_names(robot)
    positions = np.array([float(robot.index(n)) for n in robot])  # value = robot slot
    assert [robot[int(i)] for i in positions[index]] == contract["joint_names"]

    with pytest.raises(ValueError, match=r"missing policy joint\(s\) \['joint3'\]"):
        policy.check_joint_names([n for n in robot if n != "joint3"])
    # the nodes' rule: extra joints (another controller's, a caster) are ignored
    extra = ["caster", *robot, "other_arm_joint1"]
    assert [extra[int(i)] for i in policy.check_joint_names(extra)] == contract["joint_names"]
    with pytest.raises(ValueError, match="duplicate.*joint1"):
        policy.check_joint_names([*robot, "joint1"])


def test_bad_observations_raise_clear_errors(exported):
    folder, contract = exported
    policy = ExportedPolicy.load(folder, backend="onnx")
    dim = contract["obs_dim"]
    with pytest.raises(ValueError, match=rf"shape \({dim - 1},\), expected \({dim},\)"):
        policy(np.zeros(dim - 1))
    with pytest.raises(ValueError, match="expected"):
        policy(np.zeros((2, 3, dim)))
    obs = np.zeros((4, dim), dtype=np.float32)
    ee = next(t for t in contract["observation"]["terms"] if t["name"] == "ee_pos")
    obs[1, ee["start"] + 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in term.*ee_pos"):
        policy(obs)


def test_loader_checks_version_and_files(exported, tmp_path):
    folder, contract = exported
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / SIDECAR_FILE).write_text(json.dumps({**contract, "format": "xembody-policy/0"}))
    with pytest.raises(ValueError, match="xembody-policy/0"):
        ExportedPolicy.load(copy)
    (copy / SIDECAR_FILE).write_text(json.dumps(contract))
    (copy / "policy.onnx").write_bytes((folder / "policy.pt").read_bytes())
    with pytest.raises(ValueError, match="contents differ"):
        ExportedPolicy.load(copy, backend="onnx")
    with pytest.raises(ValueError, match="backend"):
        ExportedPolicy.load(folder, backend="tflite")


def test_loader_runs_without_the_training_stack(exported):
    folder, contract = exported
    code = (
        "import sys; sys.modules['rsl_rl'] = None; sys.modules['mujoco'] = None\n"
        "import numpy as np\n"
        "from xembody.models.exported import ExportedPolicy\n"
        f"p = ExportedPolicy.load({str(folder)!r})\n"
        f"print(p(np.zeros({contract['obs_dim']})).shape, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "(7,) False"  # onnx backend: not even torch


def test_export_cli(trained, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(trained), "--out", str(tmp_path / "x")]) == 0
    printed = capsys.readouterr().out
    assert "iteration 1" in printed and "policy.onnx" in printed and "policy.json" in printed
    assert ExportedPolicy.load(tmp_path / "x", backend="torchscript").num_actions == 7
    assert main(["export", "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "error" in capsys.readouterr().err


# --- checkpoints ----------------------------------------------------------------------------
def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Exact equality of nested state dicts (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}/{i}")
    else:
        assert a == b, where


def test_checkpoint_resumes_with_identical_state(tmp_path):
    run = Run(
        "reach",
        tasks.make_config("reach"),
        PPOConfig(num_steps_per_env=8),
        resolve_body("arm"),
        {"note": "test"},
    )
    folder = tmp_path / "first"
    run.save(folder)
    env = make_env(run, 16, threads=1)
    first = quiet_runner(run, env, log_dir=str(folder))
    first.learn(2)
    env.close()
    ckpt = latest_checkpoint(folder)
    assert ckpt.name == "model_1.pt"

    run_again = Run.load(ckpt)
    env = make_env(run_again, 16, seed=7, threads=1)
    second = quiet_runner(run_again, env)
    second.load(str(ckpt))
    env.close()
    saved = first.alg.save()
    assert saved["optimizer_state_dict"]["state"]  # Adam moments exist after 2 updates
    assert_same(saved, second.alg.save())
    assert second.alg.learning_rate == first.alg.learning_rate
    assert second.current_learning_iteration == first.current_learning_iteration == 1

    # `train --resume` continues the count: the checkpoint holds iteration 1's update, so
    # the resumed run does iterations 2 and 3 and never repeats 1.
    resumed = train(
        TrainConfig(**TINY, log_root=str(tmp_path), run_name="resumed", resume=str(ckpt))
    )
    last = latest_checkpoint(resumed)
    assert last.name == f"model_{1 + TINY['iterations']}.pt"
    assert torch.load(last, weights_only=False)["iter"] == 1 + TINY["iterations"]
    assert not (resumed / "model_1.pt").exists()
