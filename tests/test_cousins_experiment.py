"""The twin-against-cousins policy experiment (issue 10, xembody.models.cousins): the scenes
built from a scan, the `cabinet` task's teacher and grasp on them, a cloned student that
learns, and the report."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from xembody.models.cousins import experiment as ex
from xembody.models.cousins.report import results_section, section_title
from xembody.models.cousins.scenes import build_scenes
from xembody.real.perception.evaluate import scan_and_extract, write_results_section
from xembody.sim import bodies, tasks

CFG = ex.ExperimentConfig()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return build_scenes(CFG, 0, scan_and_extract, tmp_path_factory.mktemp("room"))


@pytest.fixture(scope="module")
def arm():
    return bodies.sample("arm", seed=CFG.arm_seed)


def test_scenes_come_from_the_scan(scenes):
    assert len(scenes["cousins"]) == CFG.cousins
    assert len(scenes["heldout_near"]) + len(scenes["heldout_far"]) == CFG.heldout
    for key in ("twin", "cousins", "heldout_near", "heldout_far", "broad", "real"):
        assert all(c.asset.params["n_drawers"] >= 1 for c in scenes[key]), key
    near = max(c.distance for c in scenes["heldout_near"])
    assert near <= min(c.distance for c in scenes["heldout_far"])
    # the real cabinet is the true one: its hidden styles are not the twin's best guess
    twin, real = scenes["twin"][0].asset.params, scenes["real"][0].asset.params
    hidden = ("handle", "handle_place", "drawer_travel", "slide_damping", "panel")
    assert any(twin[k] != real[k] for k in hidden)
    # the cabinet faces the arm (front towards -x), about `standoff` m away
    twin_cab = scenes["twin"][0]
    assert abs(abs(twin_cab.yaw) - np.pi) < 0.05
    front = twin_cab.pos[0] - twin_cab.asset.size[0] / 2
    assert front == pytest.approx(CFG.standoff, abs=0.01)


def test_same_seed_same_scenes(scenes, tmp_path):
    again = build_scenes(CFG, 0, scan_and_extract, tmp_path)
    for key in ("twin", "cousins", "real"):
        assert [c.asset for c in again[key]] == [c.asset for c in scenes[key]]


def test_teacher_opens_the_drawer_and_grasp_needs_the_handle(scenes, arm):
    for cab in (scenes["twin"][0], scenes["real"][0], scenes["cousins"][0]):
        env = ex.make_env(arm, cab, "drawer", 3, seed=0)
        assert ex.rollout(env, None)[2].all(), cab.name
    # closing the grip far from the handle holds nothing and pulls nothing open (without
    # jitter: a cabinet drawn into the wall behind it can jolt its drawer a few cm open)
    cfg = tasks.make_config("cabinet", cabinet=scenes["twin"][0].scene(), jitter_m=0.0,
                            jitter_rad=0.0, randomization=ex.SENSING)  # fmt: skip
    env = tasks.make_env("cabinet", arm, 2, cfg=cfg, seed=1, num_threads=1)
    for _ in range(env.max_episode_length - 1):
        env.step(torch.tensor([[-0.5, 0.0, 0.0, 1.0]] * 2))
    assert not env.task.grasped.any()
    assert (env.task.opening() < 0.02).all()


def test_cloned_student_learns_the_twin(scenes, arm):
    cfg = replace(CFG, bc_steps=1500)
    x, y, rate = ex.collect(arm, scenes["twin"], 24, cfg, seed=0)
    assert rate == 1.0 and x.shape[1] == 15 and y.shape[1] == 4
    policy = ex.clone_student(x, y, cfg, seed=0)
    wins = ex.evaluate_policy(arm, policy, scenes["twin"], 20, cfg, seed=5)
    idle = lambda o: torch.zeros(len(o), 4)  # noqa: E731
    assert ex.evaluate_policy(arm, idle, scenes["twin"], 5, cfg, seed=5) == 0
    assert wins >= 16, f"twin student opened the drawer in {wins}/20 episodes"


def test_report_section(tmp_path):
    cfg = replace(CFG, seeds=(0,), episodes=2, demos=4, bc_steps=50, workers=1, broad=2)
    result = ex.run_experiment(cfg, scan_and_extract, tmp_path, progress=lambda m: None)
    for name in ex.SETS:
        for ev in ex.EVALS:
            cell = result["table"][name][ev]
            assert cell["n"] == 2 and cell["success"] * 2 in (0, 1, 2)  # a share of 2 episodes
            assert cell["ci95"][0] <= cell["success"] <= cell["ci95"][1]
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n\n## Other\n\nkept\n")
    write_results_section(results_section(result, "cmd"), doc)
    write_results_section(results_section(result, "cmd"), doc)
    text = doc.read_text()
    assert text.count(section_title("drawer")) == 1 and "## Other\n\nkept" in text
    assert "| cousins 8 |" in text


def test_door_task(arm, tmp_path):
    cfg = replace(CFG, task="door")
    scenes = build_scenes(cfg, 0, scan_and_extract, tmp_path)
    assert all(c.asset.params["n_doors"] >= 1 for c in scenes["cousins"] + scenes["real"])
    env = ex.make_env(arm, scenes["twin"][0], "door", 2, seed=0)
    assert env.task.hinge and env.task.goal == env.task.cfg.open_rad
    assert ex.rollout(env, None)[2].all()
    with pytest.raises(ValueError, match="task='lid'"):
        replace(CFG, task="lid")


def test_cabinet_task_config_refuses_a_cabinet_without_the_part(scenes):
    drawers_only = scenes["twin"][0].scene()
    drawers_only["params"] = {**drawers_only["params"], "n_doors": 0}
    with pytest.raises(ValueError, match="n_doors=0, expected at least 1 for part='door'"):
        tasks.make_config("cabinet", part="door", cabinet=drawers_only)
    with pytest.raises(ValueError, match=r"cabinet lacks \['yaw'\]"):
        tasks.make_config("cabinet", cabinet={k: v for k, v in drawers_only.items() if k != "yaw"})
