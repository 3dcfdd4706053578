"""A robot of the user's own, named `module:Class` on the command line, runs through
collect -> fit -> gap (and effects) without an edit to the project; datasets know their
robot, and a gap on another robot is refused unless it is asked for."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from xembody.cli import main
from xembody.models.dataset import Dataset
from xembody.real.proxy import RobotConfig
from xembody.real.robot import SimRobot, robot_class

POLICY = "tests/assets/policies/reach"


class LaggyRobot(SimRobot):
    """A robot nobody in the project wrote: weaker motors (`gain_scale` x kp) that act
    `lag` control periods late. Passes `model=`/`suspended=` on, as the gap study needs."""

    def __init__(self, embodiment, control_dt=0.02, seed=0, *, lag=1, gain_scale=0.6, **kw):
        self.lag, self.gain_scale = int(lag), float(gain_scale)
        super().__init__(embodiment, control_dt, seed, **kw)

    def set_gains(self, kp, kd):
        super().set_gains(np.asarray(kp) * self.gain_scale, kd)

    def _sync(self):
        self.queue = [self._sent.copy()] * self.lag

    def _latch(self, targets):
        self.queue.append(targets.copy())
        return self.queue.pop(0)


SPEC = f"{__name__}:LaggyRobot"
OPTIONS = {"body": "arm", "lag": 1, "gain_scale": 0.6}


def run(args: list[str], capsys) -> tuple[dict, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(args)
    err = capsys.readouterr().err
    assert code == 0, err
    return json.loads(buf.getvalue()), err


def test_robot_config_builds_a_class_by_path():
    robot = RobotConfig.load(SPEC, OPTIONS)
    assert robot.robot == SPEC and robot.options == {"lag": 1, "gain_scale": 0.6}
    assert robot.body == "arm" and robot.proxy is None
    r = robot.make()
    assert isinstance(r, LaggyRobot) and r.lag == 1
    assert robot_class(SPEC) is LaggyRobot
    with pytest.raises(ValueError, match="no 'Nope'"):
        RobotConfig.load(f"{__name__}:Nope", OPTIONS)
    with pytest.raises(ValueError, match="unexpected keyword argument 'bogus'"):
        RobotConfig.load(SPEC, {**OPTIONS, "bogus": 1}).make()
    with pytest.raises(ValueError, match="which body"):
        RobotConfig.load(SPEC, {"lag": 1})


def test_custom_robot_collect_fit_gap_and_effects(tmp_path, capsys):
    torch.set_num_threads(1)
    data, test = str(tmp_path / "laggy.zarr"), str(tmp_path / "laggy_test.zarr")
    robot = ["--robot", SPEC, "--robot-config", json.dumps(OPTIONS)]
    out, _ = run(["collect", *robot, "--minutes", "0.3", "--out", data], capsys)
    assert out["frames"] == 900 and "LaggyRobot" in out["robot"]
    run(["collect", *robot, "--minutes", "0.1", "--seed", "1", "--out", test], capsys)
    ident = Dataset.open(data).meta["robot_id"]
    assert ident["class"] == SPEC and ident["config"]["options"] == {"lag": 1, "gain_scale": 0.6}

    fit, _ = run(["dynamics", "fit", "--data", data, "--steps", "200",
                  "--out", str(tmp_path / "m.pt")], capsys)  # fmt: skip
    assert fit["frames"] > 800

    gap_args = ["dynamics", "gap", "--policy", POLICY, "--data", data, "--test", test,
                "--minutes", "0.3", "--steps", "200", "--num-envs", "2", "--episodes", "1",
                "--replay-steps", "100", "--json"]  # fmt: skip
    g, err = run(gap_args, capsys)
    assert "the robot the data came from" in err and "LaggyRobot" in err
    assert g["robot_source"] == "dataset" and g["dynamics"]["steps"] == 200
    assert g["tracking_gap_rad"] > 0  # the laggy robot tracks worse than the simulator
    assert sorted(g["gap_removed"]) == ["learned", "learned_no_extrapolation", "nominal"]
    assert g["model_contribution"] == pytest.approx(
        g["gap_removed"]["learned"] - g["gap_removed"]["nominal"]
    )
    assert g["estimated_delays"]["nominal"] == 0  # the nominal model has no latency

    # a gap on another robot (the default proxy) is refused, both robots named
    assert main([*gap_args, "--robot", "arm"]) == 2
    msg = capsys.readouterr().err
    assert "ProxyRobot" in msg and "LaggyRobot" in msg and "--allow-other-robot" in msg

    fx, _ = run(["dynamics", "effects", "--policy", POLICY, *robot, "--num-envs", "2",
                 "--episodes", "1", "--json"], capsys)  # fmt: skip
    assert fx["effects"] == [] and fx["gap_rad"] == pytest.approx(g["tracking_gap_rad"])


def test_gap_on_another_robot_runs_when_asked(tmp_path, capsys):
    """--allow-other-robot: the closed loop runs on the robot given, and says so."""
    torch.set_num_threads(1)
    data = str(tmp_path / "arm.zarr")
    run(["collect", "--robot", "arm", "--minutes", "0.2", "--out", data], capsys)
    g, err = run(["dynamics", "gap", "--policy", POLICY, "--data", data, "--minutes", "0.2",
                  "--steps", "50", "--num-envs", "1", "--episodes", "1", "--robot", SPEC,
                  "--robot-config", json.dumps(OPTIONS), "--allow-other-robot", "--json"],
                 capsys)  # fmt: skip
    assert g["robot_source"] == "given" and "LaggyRobot" in g["robot"]
    assert "the robot given with --robot" in err
