"""`xembody cousins eval`: generated rooms, the evaluation's JSON and the RESULTS.md section."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xembody.cli import main
from xembody.real.perception.evaluate import (
    SECTION,
    evaluate,
    results_section,
    write_results_section,
)
from xembody.sim.scenes.random_room import random_room


def test_random_rooms_are_seeded_and_well_formed():
    a, b = random_room(np.random.default_rng(5)), random_room(np.random.default_rng(5))
    assert a == b
    assert random_room(np.random.default_rng(6)) != a
    for seed in range(10):
        room = random_room(np.random.default_rng(seed))
        cats = [o.category for o in room.objects]
        assert 3 <= len(cats) <= 7 and "cabinet" in cats and "table" in cats
        on_floor = [o for o in room.objects if "on_floor" in o.relations]
        for i, p in enumerate(on_floor):  # footprints' bounding circles never touch
            for q in on_floor[i + 1 :]:
                gap = np.hypot(*np.subtract(p.center[:2], q.center[:2]))
                assert gap > 0.5 * (np.hypot(*p.size[:2]) + np.hypot(*q.size[:2]))


def test_cli_eval_prints_json_and_writes_its_section_only_when_asked(tmp_path, capsys):
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n\n## Other\n\nkept\n")
    out = tmp_path / "eval"
    args = ["cousins", "eval", "--json", "--scenes", "1", "--seed", "2", "--n", "1"]
    assert main([*args, "--out", str(out), "--results", str(doc), "--write-docs"]) == 0
    result = json.loads(capsys.readouterr().out)
    s = result["summary"]
    assert result["config"]["scenes"] == 1 and len(result["rooms"]) == 1
    # this room (seed 2) meets every tolerance (measured: iou_min 0.69, centres within 1.7 cm)
    assert s["scenes_generated"] == 2 and s["scenes_passing_checks"] == 2
    assert s["category_accuracy"] == 1.0 and s["objects_matched"] == s["objects"]
    assert s["iou_min"] >= result["tolerances"]["iou"] and s["iou_min"] <= s["iou_mean"]
    assert s["floor_normal_deg_max"] < 1.0 and all(s["passed"].values()), s["passed"]
    assert s["objects"] == result["rooms"][0]["n_truth"] >= 3
    assert set(s["passed"]) == {"floor_normal", "category", "center", "yaw", "iou",
                                "physical_checks"}  # fmt: skip
    assert (out / "room_00" / "scan" / "depth_000.png").is_file()
    assert json.loads((out / "eval.json").read_text())["summary"] == s
    text = doc.read_text()
    assert text.startswith("# Results\n\n## Other\n\nkept\n") and SECTION in text
    assert "cousins experiment" in text and "cousins eval --json --scenes 1 --seed 2" in text


def test_cli_eval_without_write_docs_prints_the_table_and_leaves_docs_alone(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default --results, docs/RESULTS.md, would be here
    doc = tmp_path / "mine.md"
    doc.write_text("# Results\n")
    args = ["cousins", "eval", "--scenes", "1", "--seed", "2", "--n", "1", "--out", "eval"]
    assert main([*args, "--results", str(doc)]) == 0
    printed = capsys.readouterr().out
    assert SECTION in printed and "| measure | measured | target | met |" in printed
    assert doc.read_text() == "# Results\n" and not (tmp_path / "docs").exists()


def test_section_writer_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "RESULTS.md"
    doc.write_text(f"# Results\n\n## A\n\na\n\n{SECTION} (issue 10)\n\nold\n\n## B\n\nb\n")
    write_results_section(f"{SECTION} (issue 10)\n\nnew\n", doc)
    assert (
        doc.read_text() == f"# Results\n\n## A\n\na\n\n{SECTION} (issue 10)\n\nnew\n\n## B\n\nb\n"
    )
    other = f"{SECTION}: twin against cousins, drawer opening (issue 10)\n\npolicy\n"
    doc.write_text(f"# Results\n\n{other}\n{SECTION} (issue 10)\n\nold\n")
    write_results_section(f"{SECTION} (issue 10)\n\nnew\n", doc)
    assert doc.read_text() == f"# Results\n\n{other}\n{SECTION} (issue 10)\n\nnew\n"
    doc.write_text("# Results\n\n## A\n\na\n")
    write_results_section(f"{SECTION}\n\nnew\n", doc)
    write_results_section(f"{SECTION}\n\nnewer\n", doc)
    assert doc.read_text() == f"# Results\n\n## A\n\na\n\n{SECTION}\n\nnewer\n"


def test_section_states_targets_and_unmatched_objects():
    rows = [
        dict(id="a", category="box", found="box", center_m=0.01, yaw_rad=0.02, iou=0.9),
        dict(id="b", category="table", found=None, center_m=None, yaw_rad=None, iou=0.0),
    ]
    summary = dict(floor_normal_deg_max=0.1, category_accuracy=0.5, center_error_cm_mean=1.0,
                   center_error_cm_max=None, yaw_error_rad_mean=0.02, yaw_error_rad_max=None,
                   iou_mean=0.45, iou_min=0.0, objects=2, objects_matched=1,
                   scenes_generated=3, scenes_passing_checks=3, scenes_passing_pct=100.0,
                   passed=dict(floor_normal=True, category=False, center=False, yaw=False,
                               iou=False, physical_checks=True))  # fmt: skip
    result = dict(config=dict(scenes=1, seed=0, views=1, cousins=2, width=320, height=240),
                  summary=summary, tolerances=dict(floor_normal_deg=2.0, category=0.9,
                  center_m=0.05, yaw_rad=0.1, iou=0.6), rooms=[dict(objects=rows)],
                  seconds=1.0)  # fmt: skip
    text = results_section(result, "cmd")
    assert "| category accuracy (all objects) | 50.0 % | >= 90 % | **no** |" in text
    assert "100 % (3/3) | 100 % | yes |" in text
    assert "room 0 b (table, found None): centre inf cm" in text
    assert "room 0 a" not in text


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="--scenes 0: expected at least 1 room"):
        evaluate(0, out=tmp_path)
    assert main(["cousins"]) == 2
    assert "give --scan" in capsys.readouterr().err
