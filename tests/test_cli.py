"""The `xembody` command line, run as a user would (in-process through `main`)."""

import json
import re

import mujoco
import pytest

from xembody.cli import main
from xembody.sim import bodies


def test_help_everywhere(capsys):
    verbs = ["demo", "bodies", "train", "eval", "play", "export"]
    for argv in [["--help"], ["bodies", "sample", "--help"]] + [[v, "--help"] for v in verbs]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert "usage: xembody" in capsys.readouterr().out


def test_bodies_sample_writes_the_generated_mjcf(tmp_path, capsys):
    out = tmp_path / "body.xml"
    assert main(["bodies", "sample", "--class", "humanoid", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_text() == bodies.sample("humanoid", seed=3).mjcf
    facts = json.loads((tmp_path / "body.xml.json").read_text())
    assert facts["body_class"] == "humanoid" and len(facts["joints"]) >= 14
    model = mujoco.MjModel.from_xml_path(str(out))
    assert model.nu == len(facts["joints"])
    assert "humanoid" in capsys.readouterr().out


def test_bodies_show_renders_a_picture(tmp_path):
    out = tmp_path / "arm.png"
    assert (
        main(
            [
                "bodies",
                "show",
                "--class",
                "arm",
                "--seed",
                "1",
                "--out",
                str(out),
                "--width",
                "160",
                "--height",
                "120",
            ]
        )
        == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    assert main(["bodies", "sample", "--class", "octopus", "--out", str(tmp_path / "x.xml")]) == 2
    err = capsys.readouterr().err
    assert "unknown body class 'octopus'" in err and "humanoid" in err and "Traceback" not in err
    assert main(["bodies", "show", "--file", str(tmp_path / "missing.xml")]) == 2
    assert "missing.xml" in capsys.readouterr().err
    assert main(["demo", "--envs-per-body", "0"]) == 2
    assert "envs_per_body=0, expected > 0" in capsys.readouterr().err


@pytest.mark.slow  # about a minute; .ci/run runs it after the default suite
def test_demo_runs_end_to_end(tmp_path, capsys):
    code = main(
        [
            "demo",
            "--envs-per-body",
            "3",
            "--seconds",
            "0.4",
            "--threads",
            "2",
            "--out",
            str(tmp_path),
            "--train-iterations",
            "3",
            "--train-envs",
            "8",
            "--student-epochs",
            "2",
            "--ros-seconds",
            "8",
            "--vendor-iterations",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for cls in ("humanoid", "quadruped", "arm", "wheeled"):
        assert cls in out
    assert "4 body classes, 12 randomised envs stepped in one batch" in out
    assert "reach: 3 PPO iterations" in out and "exported policy: 33 observations" in out
    assert (tmp_path / "policy" / "policy.onnx").is_file()
    assert (tmp_path / "bodies.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "config.json").read_text())["envs_per_body"] == 3
    assert "one joint-token student for arms of 7 and 6 joints" in out
    assert (tmp_path / "demos" / "arm_s1.zarr" / "zarr.json").is_file()
    assert "reality gap (arm, 1 min of proxy data)" in out
    assert "ROS 2: sim robot + safety + policy + recorder as 4 processes" in out
    assert (tmp_path / "ros_mobile_base.zarr" / "zarr.json").is_file()
    assert "exported for LeRobot (v3.0) and diffusion-policy (zarr 2)" in out
    assert (tmp_path / "ros_mobile_base_lerobot" / "meta" / "info.json").is_file()
    assert (tmp_path / "ros_mobile_base_zarr2.zarr" / "meta" / "episode_ends" / ".zarray").is_file()
    assert "[9/10] digital cousins" in out
    assert "vendor file arm6.urdf: arm, fixed base; hold ok" in out
    assert "vendor file quad.urdf: quadruped, floating base; stand ok" in out
    assert "its export runs on the robot side with the robot files deleted" in out
    line = next(ln for ln in out.splitlines() if "digital cousins: scan of a generated room" in ln)
    found, placed = (
        int(v) for v in re.search(r"(\d+) objects found \((\d+) placed", line).groups()
    )
    assert found >= 1 and placed >= 3, line
    assert re.search(r"3/3 scenes \(twin \+ 2 cousins\) pass", line), line
    assert (tmp_path / "cousins" / "scan" / "depth_000.png").is_file()
    assert (tmp_path / "cousins" / "scene.json").is_file()
