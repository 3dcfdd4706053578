"""The learned joint dynamics beat the nominal simulator on held-out proxy data, and the
action adapter built on them reduces the proxy's tracking error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xembody.cli import main
from xembody.models.dynamics import (
    DynamicsConfig,
    JointwiseModel,
    WholeBodyMLP,
    fit,
    load,
    load_frames,
    save,
    windows,
)
from xembody.real.adapt import ActionAdapter
from xembody.real.collect import CollectConfig, collect
from xembody.real.proxy import RobotConfig
from xembody.real.robot import target_limits
from xembody.sim import bodies

ARM = bodies.sample("arm", seed=0)
CFG = DynamicsConfig(steps=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """1 minute of arm proxy data for training, 0.5 minute of a separate session held out."""
    root = tmp_path_factory.mktemp("dyn")
    torch.set_num_threads(1)
    collect(RobotConfig(body="arm"), CollectConfig(minutes=1.0), root / "train.zarr")
    collect(RobotConfig(body="arm"), CollectConfig(minutes=0.5, seed=1), root / "test.zarr")
    return root


@pytest.fixture(scope="module")
def model(data):
    return fit("jointwise", ARM, load_frames(data / "train.zarr")[0], CFG)


def test_windows_against_hand_made_history():
    q = np.arange(12, dtype=np.float32).reshape(6, 2)
    ep = {"q": q, "dq": q + 100, "target": q + 200}
    w = windows([ep], history=3)
    assert w["q"].shape == (5, 3, 2)
    np.testing.assert_array_equal(w["q"][0], q[[0, 0, 0]])  # padded with the first frame
    np.testing.assert_array_equal(w["q"][3], q[[1, 2, 3]])
    np.testing.assert_array_equal(w["u"][3], q[[1, 2, 3]] + 200)
    np.testing.assert_array_equal(w["q_next"][3], q[4])


def test_one_network_is_shared_across_joints():
    quad = bodies.sample("quadruped", seed=0)
    arm_net = JointwiseModel(ARM, CFG).net
    quad_net = JointwiseModel(quad, CFG).net
    shapes = lambda net: [p.shape for p in net.parameters()]  # noqa: E731
    assert shapes(arm_net) == shapes(quad_net)  # per-joint net: independent of joint count
    mlp = sum(p.numel() for p in WholeBodyMLP(quad, CFG).parameters())
    assert mlp > sum(p.numel() for p in WholeBodyMLP(ARM, CFG).parameters())


def test_model_beats_the_nominal_simulator_on_held_out_data(data):
    out = main_json(["dynamics", "eval", "--train", str(data / "train.zarr"),
                     "--test", str(data / "test.zarr"), "--minutes", "1", "--steps", "600",
                     "--json"])  # fmt: skip
    nominal, row = out["nominal_sim"], out["by_minutes"][0]
    for key in ("one_step_rmse", "rollout10_rmse"):
        assert row["jointwise"][key] < 0.5 * nominal[key], (key, row, nominal)
    assert row["train_frames"] == 3000 and out["test_frames"] == 1500


def test_save_and_load_round_trip(model, tmp_path):
    save(model, ARM, tmp_path / "m.pt", {"minutes": 1})
    again, meta = load(tmp_path / "m.pt")
    x = [torch.randn(4, CFG.history, ARM.num_actions) for _ in range(3)]
    torch.testing.assert_close(again(*x)[0], model(*x)[0])
    assert meta == {"minutes": 1}


def test_adaptation_reduces_tracking_error(data, model):
    """Replay a held-out target sequence on the proxy with and without the adapter."""
    targets = load_frames(data / "test.zarr")[0][0]["target"][:250].astype(float)
    robot_cfg = RobotConfig(body="arm")

    def tracking_error(adapter):
        robot = robot_cfg.make()
        s = robot.reset()
        err = []
        for a in targets:
            u = adapter(s.q, s.dq, a) if adapter else a
            assert (u >= target_limits(ARM)[0]).all() and (u <= target_limits(ARM)[1]).all()
            robot.send(u)
            s = robot.step()
            err.append(np.abs(robot.data.qpos[robot.qadr] - a)[:-1].mean())
        return float(np.mean(err))

    raw = tracking_error(None)
    adapted = tracking_error(ActionAdapter(model, limits=target_limits(ARM)))
    assert adapted < 0.8 * raw, (raw, adapted)


@pytest.mark.slow
def test_adapter_estimates_the_proxy_latency(tmp_path):
    """With 5 minutes of data the model shows the default proxy's 2-period latency (with 1
    minute and a CI-sized fit the estimate is not reliable: 0 or 1 were seen)."""
    torch.set_num_threads(1)  # faster than contending threads on a shared CPU
    collect(RobotConfig(body="arm"), CollectConfig(minutes=5.0), tmp_path / "d.zarr")
    model = fit("jointwise", ARM, load_frames(tmp_path / "d.zarr")[0], DynamicsConfig(steps=2000))
    s = RobotConfig(body="arm").make().reset()
    adapter = ActionAdapter(model)
    adapter.reset(s.q, s.dq)
    assert adapter.delay == 2


def test_cli_rejects_bad_minutes(data, capsys):
    args = ["dynamics", "eval", "--train", str(data / "train.zarr"), "--test",
            str(data / "test.zarr"), "--minutes", "0"]  # fmt: skip
    assert main(args) == 2
    assert "--minutes" in capsys.readouterr().err


def main_json(args: list[str]) -> dict:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(args) == 0
    return json.loads(buf.getvalue())
