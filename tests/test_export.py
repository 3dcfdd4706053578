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

import numpy as np
import pytest
import torch
from rsl_rl.runners import OnPolicyRunner

from xembody.cli import main
from xembody.models.export import export_policy
from xembody.models.exported import FORMAT, SIDECAR_FILE, ExportedPolicy
from xembody.models.ppo import PPOConfig, rsl_rl_config
from xembody.models.run import Run, latest_checkpoint, make_env, resolve_body
from xembody.sim import tasks
from xembody.train import TrainConfig, train

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
    with pytest.raises(ValueError, match="extra joint.*'caster'"):
        policy.check_joint_names([*robot, "caster"])
    assert len(policy.check_joint_names([*robot, "caster"], allow_unknown=True)) == 7
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
