"""`xembody play`: pictures of a policy, and for legged tasks the gait as a contact diagram."""

from __future__ import annotations

import numpy as np
from PIL import Image

from xembody.cli import main
from xembody.play import foot_pairing

FEET = ("FL_foot", "FR_foot", "RL_foot", "RR_foot")


def gait(pattern: dict[str, int], steps: int = 100, period: int = 20) -> np.ndarray:
    """Contacts (steps, 4): each foot in stance half of the period, shifted by its offset."""
    k = np.arange(steps)[:, None]
    offsets = np.array([pattern[f.split("_")[0]] for f in FEET])
    return ((k + offsets * period // 2) % period) < period // 2


def test_foot_pairing_tells_a_trot_from_a_pace_and_a_bound():
    trot = foot_pairing(gait({"FL": 0, "RR": 0, "FR": 1, "RL": 1}), FEET)
    pace = foot_pairing(gait({"FL": 0, "RL": 0, "FR": 1, "RR": 1}), FEET)
    bound = foot_pairing(gait({"FL": 0, "FR": 0, "RL": 1, "RR": 1}), FEET)
    assert trot["diagonal"] == 1 and trot["lateral"] == trot["same_side"] == 0
    assert pace["same_side"] == 1 and pace["diagonal"] == pace["lateral"] == 0
    assert bound["lateral"] == 1 and bound["diagonal"] == bound["same_side"] == 0
    assert trot["stance"] == 0.5
    assert foot_pairing(gait({"FL": 0, "RR": 0, "FR": 1, "RL": 1})[:, :2], FEET[:2]) == {}


def test_play_writes_a_gif_and_a_contact_diagram_of_a_held_command(tmp_path, capsys):
    run = tmp_path / "runs"
    args = ["--task", "velocity", "--iterations", "1", "--num-envs", "8", "--log-root", str(run)]
    assert main(["train", *args, "--run-name", "r"]) == 0
    folder = run / "velocity-quadruped_s0" / "r"
    gif, plot = tmp_path / "walk.gif", tmp_path / "gait.png"
    assert main(["play", "--checkpoint", str(folder), "--seconds", "1", "--fps", "5",
                 "--width", "64", "--height", "48", "--command", "0.5", "0", "0",
                 "--out", str(gif), "--gait-plot", str(plot)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "feet in the same state: diagonal pairs" in out
    assert Image.open(gif).n_frames == 5
    assert Image.open(plot).size[1] == 4 * 24 + 30  # one row per foot
    assert main(["play", "--checkpoint", str(folder), "--command", "0.5", "0"]) == 2
    assert "command=(0.5, 0.0), expected three numbers: VX VY WZ" in capsys.readouterr().err
