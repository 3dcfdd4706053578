"""Behaviour cloning: the fitting core, the run folder that eval/export take as they are,
and (slow) BC on scripted demonstrations reaching >= 60% success on arm reaching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xembody.models.bc import BCConfig, fit_mlp, train_bc
from xembody.real.dataset import Dataset
from xembody.real.teleop import make
from xembody.real.teleop.session import SessionConfig, TeleopSession
from xembody.sim import bodies


def collect(path, episodes: int, *, seed: int = 0, noise: float = 0.3) -> Dataset:
    """Scripted reach demonstrations: the teacher device through the teleop session, under
    the task's randomisation, executed with action noise (the clean labels are recorded)."""
    cfg = SessionConfig(
        episodes=episodes, realtime=False, randomize=True, seed=seed, action_noise=noise,
        ik_iterations=2, ik_max_step=0.1, ik_from_measured=True,
    )  # fmt: skip
    TeleopSession(bodies.sample("arm", seed=0), make("teacher"), path, cfg).run()
    return Dataset.open(path)


def test_fit_mlp_learns_a_smooth_map_and_reports_held_out_error():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3000, 4, generator=gen) * 4 - 2
    y = torch.stack([torch.sin(x[:, 0]) * x[:, 1], x[:, 2] ** 2 - x[:, 3]], 1)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ELU(), torch.nn.Linear(64, 2))
    before = (mlp(x[2500:]) - y[2500:]).square().mean().item()
    hist = fit_mlp(mlp, x[:2500], y[:2500], x_val=x[2500:], y_val=y[2500:], epochs=40,
                   batch_size=128, learning_rate=3e-3)  # fmt: skip
    assert len(hist) == 40 and hist[-1]["train_mse"] < hist[0]["train_mse"]
    assert hist[-1]["val_mse"] < 0.05 * before, (before, hist[-1])


def test_bc_run_folder_loads_in_eval_and_export_like_a_ppo_run(tmp_path):
    from xembody.evaluate import load_policy
    from xembody.models.export import export_policy
    from xembody.models.exported import ExportedPolicy
    from xembody.models.run import Run, make_env

    ds = collect(tmp_path / "demos.zarr", 4, noise=0.0)
    assert ds.num_episodes == 4 and ds.meta["device"] == "teacher"
    cfg = BCConfig(data=str(tmp_path / "demos.zarr"), epochs=30, batch_size=64,
                   log_root=str(tmp_path / "runs"),
                   run_name="bc", val_fraction=0.0)  # fmt: skip
    folder = train_bc(cfg)
    assert (folder / "model_0.pt").is_file() and (folder / "bc.json").is_file()
    run = Run.load(folder)
    assert run.task == "reach" and run.body.name == "arm_s0"

    # the policy reproduces the demonstrations better than their mean action does
    obs, act = torch.from_numpy(ds.read("obs")), torch.from_numpy(ds.read("action"))
    env = make_env(run, 1, randomize=False)
    policy = load_policy(folder, env)
    env.close()
    from tensordict import TensorDict

    td = TensorDict({"policy": obs, "critic": obs}, batch_size=[len(obs)])
    with torch.no_grad():
        pred = policy(td)
    mse = (pred - act).square().mean().item()
    baseline = (act - act.mean(0)).square().mean().item()
    assert mse < 0.2 * baseline, (mse, baseline)

    # exported with the PPO policies' contract; the ONNX network gives the same actions
    out = tmp_path / "exported"
    contract = export_policy(folder, out)
    assert contract["task"] == "reach" and contract["obs_dim"] == obs.shape[1]
    exported = ExportedPolicy.load(out)
    np.testing.assert_allclose(exported(obs[:50].numpy()), pred[:50].numpy(), atol=1e-4)


def test_bc_refuses_datasets_without_obs_and_action(tmp_path):
    from xembody.real.dataset import Feature

    path = tmp_path / "plain.zarr"
    ds = Dataset.create(path, {"joint_pos": Feature((3,))}, fps=30.0)
    ds.add_frame({"joint_pos": np.zeros(3)})
    ds.save_episode()
    with pytest.raises(ValueError, match="no 'task'"):
        train_bc(BCConfig(data=str(path), log_root=str(tmp_path)))
    with pytest.raises(ValueError, match="give --data"):
        BCConfig()


@pytest.mark.slow  # about 3 minutes on 2 cores; .ci/run runs it after the default suite
def test_bc_on_scripted_demos_reaches_60_percent_on_arm_reaching(tmp_path):
    """~2 min on 2 quiet cores (~6 min when busy): 150 noisy-execution teacher episodes,
    BC, `xembody eval` (the training randomisation) over 100 episodes. With 100 episodes it
    measured 69% [59, 77] before the env's draws moved to torch generators and 55% [45, 64]
    after; 150 episodes pass again."""
    from xembody.evaluate import EvalConfig, evaluate

    clean = collect(tmp_path / "clean.zarr", 10, seed=1, noise=0.0)
    assert np.mean([e["success"] for e in clean.episodes]) >= 0.9  # the teacher itself
    collect(tmp_path / "demos.zarr", 150)
    cfg = BCConfig(data=str(tmp_path / "demos.zarr"), only_success=False, log_root=str(tmp_path))
    folder = train_bc(cfg)
    result = evaluate(EvalConfig(checkpoint=str(folder), episodes=100, seed=7))
    assert result["success_rate"]["mean"] >= 0.6, result["success_rate"]
