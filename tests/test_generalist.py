"""The generalist pipeline: teacher, demos, BC base, residual specialists, DAgger, table."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from xembody.cli import main
from xembody.evaluate import run_episodes, summarize
from xembody.models.pipeline import summary, write_results_doc
from xembody.models.run import resolve_body
from xembody.models.teachers import ReachIKTeacher
from xembody.real.dataset import Dataset
from xembody.sim import tasks
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_ik_teacher_solves_reach_on_different_arms(seed):
    cfg = dataclasses.replace(tasks.make_config("reach"), randomization=RandomizationCfg.off())
    env = BodyEnv(tasks.make_task("reach", resolve_body("arm", seed), cfg), 16, num_threads=1)
    with torch.inference_mode():
        result = summarize(run_episodes(env, ReachIKTeacher(env), 16))
    env.close()
    assert result["success_rate"]["mean"] >= 0.9, result["success_rate"]


def test_pipeline_runs_every_stage_and_resumes(tmp_path, capsys):
    out = tmp_path / "g"
    args = [
        "--out", str(out), "--train-bodies", "0,1", "--heldout-bodies", "100",
        "--demo-episodes", "8", "--demo-noise", "0", "--bc-epochs", "2",
        "--specialist-iterations", "2", "--specialist-envs", "16",
        "--dagger-iterations", "2", "--dagger-envs", "8",
        "--eval-episodes", "4", "--json",
    ]  # fmt: skip
    assert main(["generalist", "run", *args]) == 0
    printed = capsys.readouterr().out
    results = json.loads(printed[printed.index("{\n") :].rsplit("}", 1)[0] + "}")
    # Demonstrations are project datasets, one per training body, from a working teacher.
    for body in ("arm_s0", "arm_s1"):
        ds = Dataset.open(out / "demos" / f"{body}.zarr")
        assert ds.num_episodes == 8 and ds.meta["body"] == body
        assert sum(e["success"] for e in ds.episodes) >= 6
        assert (out / "base" / body / "policy.json").exists()
        assert list((out / "specialists" / f"reach-{body}" / "run").glob("model_*.pt"))
    rows = {r["body"]: r for r in results["rows"]}
    assert set(rows) == {"arm_s0", "arm_s1", "arm_s100-heldout"}
    assert "specialist" not in rows["arm_s100-heldout"] and rows["arm_s100-heldout"]["heldout"]
    assert rows["arm_s0"]["joints"] != rows["arm_s1"]["joints"]  # one student, 7 and 6 joints
    # Evaluating again reuses every stage's output.
    stamp = (out / "generalist.pt").stat().st_mtime
    assert main(["generalist", "eval", *args]) == 0
    assert (out / "generalist.pt").stat().st_mtime == stamp
    # The docs section is replaced, not appended, on a second write.
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n\n## Other section\n\nkept\n")
    write_results_doc(results, doc)
    write_results_doc(results, doc)
    text = doc.read_text()
    assert text.count("## Generalist: reach") == 1 and "kept" in text
    assert set(summary(results)) >= {"generalist_over_base", "heldout_over_in_distribution"}


def test_bad_generalist_arguments_fail_with_one_line(capsys):
    assert main(["generalist", "eval", "--train-bodies", "a,b"]) == 2
    assert "train_bodies='a,b'" in capsys.readouterr().err
    assert main(["generalist", "eval", "--task", "velocity"]) == 2


def test_jacobian_terms_are_two_more_joint_channels_that_point_downhill():
    """`jacobian_obs`: two per-joint channels for the student; moving one joint a little in
    the sign of its jac_pos_error shrinks the end-effector position error."""
    import mujoco
    import numpy as np

    from xembody.models.generalist import BodyBinding

    def env_of(**extra) -> BodyEnv:
        cfg = tasks.make_config("reach", randomization=RandomizationCfg.off(), **extra)
        return BodyEnv(tasks.make_task("reach", resolve_body("arm", 2), cfg), 1, num_threads=1)

    plain, env = env_of(), env_of(jacobian_obs=True)
    channels = BodyBinding.from_env(env).joint_index.shape[1]
    assert channels == BodyBinding.from_env(plain).joint_index.shape[1] + 2
    plain.close()
    env.step(torch.full((1, env.num_actions), 0.3))
    task, m = env.task, env.sim.model
    jac = task.jac_pos_error()[0].numpy()
    d = mujoco.MjData(m)
    site = m.site(task.emb.sensors.ee_site).id
    target = task.target_pos[0].double().numpy()

    def error(dq: np.ndarray) -> float:
        d.qpos[:] = env.sim.qpos[0].numpy()
        d.qpos[task.actuated_qadr.numpy()] += dq
        mujoco.mj_kinematics(m, d)
        return float(np.linalg.norm(target - d.site_xpos[site]))

    e0, moved = error(np.zeros(len(jac))), 0
    for j in np.nonzero(np.abs(jac) > 0.05 * np.abs(jac).max())[0]:
        step = np.zeros(len(jac))
        step[j] = 1e-3 * np.sign(jac[j])
        assert error(step) < e0, (j, jac)
        moved += 1
    env.close()
    assert moved >= 3
