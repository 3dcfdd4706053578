"""`teleop` and `collect` take a robot file with its body card and the card options as
`train` does (tests/test_body_card.py trains on the fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xembody.cli import main

ARM6 = (
    Path(__file__).parent / "assets" / "robots" / "fixture_arm_description" / "urdf" / "arm6.urdf"
)


@pytest.fixture(autouse=True)
def _mesh_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XEMBODY_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_teleop_records_a_robot_file_with_card_options(tmp_path: Path, capsys) -> None:
    argv = ["teleop", "--body", str(ARM6), "--device", "teacher", "--episodes", "1"]
    argv += ["--no-realtime", "--seconds", "0.5"]
    assert main([*argv, "--ee", "tool0", "--out", str(tmp_path / "d.zarr")]) == 0
    out = capsys.readouterr().out
    assert "recording fixture_arm6 (reach, sim)" in out
    assert json.loads(out.splitlines()[-1])["saved"]
    assert main([*argv, "--ee", "nowhere", "--out", str(tmp_path / "x.zarr")]) == 2
    assert "ee: 'nowhere' is neither a link" in capsys.readouterr().err
    assert main(["teleop", "--body", "arm", "--ee", "tool0", "--out", str(tmp_path / "y")]) == 2
    assert "--ee: only for a robot file" in capsys.readouterr().err


def test_collect_writes_the_carded_body_beside_the_dataset(tmp_path: Path, capsys) -> None:
    out = tmp_path / "arm.zarr"
    argv = ["collect", "--robot", str(ARM6), "--ee", "tool0", "--episode-s", "1"]
    argv += ["--out", str(out), "--write-robot", str(tmp_path / "robot.json")]
    assert main([*argv, "--minutes", "0.02"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["body"] == "fixture_arm6"
    body = Path(json.loads((tmp_path / "robot.json").read_text())["body"])
    assert body == (tmp_path / "arm.zarr.body.xml").resolve() and body.is_file()
    facts = json.loads(Path(f"{body}.json").read_text())
    assert facts["sensors"]["ee_site"] == "tool0"
    assert main([*argv, "--minutes", "0.04"]) == 0  # resumes: the same body again
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["resumed_from_frames"] > 0
