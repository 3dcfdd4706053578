"""The generalist pipeline: teacher, demos, BC base, residual specialists, DAgger, table."""

from __future__ import annotations

import dataclasses
import json

import mujoco
import numpy as np
import pytest
import torch

from xembody.cli import main
from xembody.models.evaluation import run_episodes, summarize
from xembody.models.generalist import (
    BodyBinding,
    BoundStudent,
    fit,
    load_demos,
    make_student,
    record_demos,
)
from xembody.models.pipeline import summary, write_results_doc
from xembody.models.run import resolve_body
from xembody.models.teachers import NavigatePlannerTeacher, ReachDiffIKTeacher, ReachIKTeacher
from xembody.real.dataset import Dataset
from xembody.sim import tasks
from xembody.sim.bodies import registry
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


def _nav_env(seed: int, n: int, **overrides) -> BodyEnv:
    cfg = dataclasses.replace(tasks.make_config("navigate"), randomization=RandomizationCfg.off())
    emb = registry.sample("wheeled", seed, **overrides)
    return BodyEnv(tasks.make_task("navigate", emb, cfg), n, seed=1, num_threads=1)


@pytest.mark.parametrize("seed", [0, 1])  # omnidirectional, differential
def test_planner_teacher_navigates_among_obstacles(seed):
    env = _nav_env(seed, 16)
    with torch.inference_mode():
        result = summarize(run_episodes(env, NavigatePlannerTeacher(env), 32))
    env.close()
    assert result["success_rate"]["mean"] >= 0.9, result["success_rate"]
    assert result["metrics"]["collided"]["mean"] <= 0.05


def test_twist_student_serves_differential_and_omni_bases_from_the_body_token(tmp_path):
    """Navigation actions are a base twist: the student reads them from its body token in
    (vx, vy, wz); a differential base uses vx and wz, an omnidirectional one all three.
    Cloned on the planner's demonstrations of both kinds at once, it reaches goals on both
    bases, which the untrained student does not."""
    envs = [_nav_env(0, 16), _nav_env(1, 16)]
    bindings = [BodyBinding.from_env(e) for e in envs]
    assert [b.body_action_index.tolist() for b in bindings] == [[0, 1, 2], [0, 2]]
    assert [b.num_joints for b in bindings] == [3, 2]  # planar joints; wheels
    assert bindings[0].joint_index.shape[1] == 0  # no per-joint terms: descriptors only
    torch.manual_seed(0)
    student = make_student(bindings[0], dim=32, heads=2, layers=1)
    data = []
    for k, (env, binding) in enumerate(zip(envs, bindings, strict=True)):
        record_demos(env, NavigatePlannerTeacher(env), tmp_path / f"{k}.zarr", 24,
                     action_noise=0.2)  # fmt: skip
        data.append(load_demos(tmp_path / f"{k}.zarr", binding))

    def progress() -> list[float]:
        out = []
        for env, binding in zip(envs, bindings, strict=True):
            bound = BoundStudent(student, binding).eval()
            with torch.inference_mode():
                obs = env.reset()
                assert bound(obs["policy"]).shape == (16, env.num_actions)
                records = run_episodes(env, lambda o, b=bound: b(o["policy"]), 32)
            out.append(sum(records["success"]) / 32)
        return out

    before = progress()
    fit(student, data, epochs=150, log=lambda _: None)
    after = progress()
    for e in envs:
        e.close()
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    assert sum(after) >= 0.6, (before, after)


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
        assert ds.num_episodes == 8 and ds.meta["body"]["name"] == body
        assert sum(e["success"] for e in ds.episodes) >= 6
        assert (out / "base" / body / "policy.json").exists()
        assert list((out / "specialists" / f"reach-{body}" / "run").glob("model_*.pt"))
    rows = {r["body"]: r for r in results["rows"]}
    assert set(rows) == {"arm_s0", "arm_s1", "arm_s100-heldout"}
    assert "specialist" not in rows["arm_s100-heldout"] and rows["arm_s100-heldout"]["heldout"]
    assert rows["arm_s0"]["joints"] != rows["arm_s1"]["joints"]  # one student, 7 and 6 joints
    # With the IK-step and gravity terms on, the hand-made controller of the same terms is
    # evaluated beside the learned policies, held-out bodies included.
    assert all("teacher" in r for r in rows.values())
    # Evaluating again reuses every stage's output, also from a folder moved since.
    moved = tmp_path / "moved"
    out.rename(moved)
    stamp = (moved / "generalist.pt").stat().st_mtime
    args[args.index(str(out))] = str(moved)
    assert main(["generalist", "eval", *args]) == 0
    assert (moved / "generalist.pt").stat().st_mtime == stamp
    # The docs section is replaced, not appended, on a second write.
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n\n## Other section\n\nkept\n")
    write_results_doc(results, doc)
    write_results_doc(results, doc)
    text = doc.read_text()
    assert text.count("## Generalist: reach") == 1 and "kept" in text
    assert set(summary(results)) >= {"generalist_over_base", "heldout_over_in_distribution"}


def test_navigate_pipeline_trains_specialists_over_twist_bases(tmp_path, capsys):
    """The same stages on wheeled bases: the cloned base is exported with the body's own
    twist actions, residual PPO trains over it, held-out bases are sampled with a wider
    wheelbase than the training range allows."""
    out = tmp_path / "n"
    args = [
        "--task", "navigate", "--out", str(out), "--train-bodies", "0,1",
        "--heldout-bodies", "101", "--demo-episodes", "8", "--bc-epochs", "2",
        "--specialist-iterations", "2", "--specialist-envs", "16",
        "--dagger-iterations", "1", "--dagger-envs", "8", "--eval-episodes", "4", "--json",
    ]  # fmt: skip
    assert main(["generalist", "run", *args]) == 0
    printed = capsys.readouterr().out
    results = json.loads(printed[printed.index("{\n") :].rsplit("}", 1)[0] + "}")
    names = {
        b: json.loads((out / "base" / b / "policy.json").read_text())["action"]["names"]
        for b in ("wheeled_s0", "wheeled_s1")
    }
    assert names == {"wheeled_s0": ["vx", "vy", "wz"], "wheeled_s1": ["vx", "wz"]}
    for body in names:
        assert list((out / "specialists" / f"navigate-{body}" / "run").glob("model_*.pt"))
    rows = {r["body"]: r for r in results["rows"]}
    assert set(rows) == {"wheeled_s0", "wheeled_s1", "wheeled_s101-heldout"}
    held = resolve_body(str(out / "bodies" / "wheeled_s101-heldout.xml"))
    assert held.params["track_width"] >= 0.70  # the training range ends at 0.65


def test_bad_generalist_arguments_fail_with_one_line(capsys):
    assert main(["generalist", "eval", "--train-bodies", "a,b"]) == 2
    assert "train_bodies='a,b'" in capsys.readouterr().err
    assert main(["generalist", "eval", "--task", "walk"]) == 2
    assert main(["generalist", "eval", "--teacher", "xembody.models.teachers:Nope"]) == 2
    assert "teacher='xembody.models.teachers:Nope'" in capsys.readouterr().err


def test_task_defaults_fill_only_unset_options():
    from xembody.models.generalist_config import TASKS, GeneralistConfig

    cfg = GeneralistConfig(task="reach")  # all unset: the task's table
    assert cfg.teacher == TASKS["reach"]["teacher"] and cfg.out == "runs/generalist-reach"
    assert cfg.residual_scale == TASKS["reach"]["residual_scale"] and cfg.heldout_in_range == ""
    # values the user gives survive, also the empty ones the task would otherwise fill
    mine = GeneralistConfig(task="reach", teacher="", train_bodies="3", residual_scale=0.0,
                            heldout_overrides="", out="elsewhere")  # fmt: skip
    assert (mine.teacher, mine.train_bodies, mine.residual_scale) == ("", "3", 0.0)
    assert (mine.heldout_overrides, mine.out) == ("", "elsewhere")
    assert mine.specialist_iterations == TASKS["reach"]["specialist_iterations"]  # unset: filled
    with pytest.raises(ValueError, match="out=''"):
        GeneralistConfig(task="reach", out="")


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
    assert moved >= 3
    # `ik_obs`: one more channel, the damped-least-squares step; taking a tenth of it
    # removes about a tenth of the error (it points at the target, not just downhill).
    env.close()
    env = env_of(jacobian_obs=True, ik_obs=True)
    assert BodyBinding.from_env(env).joint_index.shape[1] == channels + 1
    env.step(torch.full((1, env.num_actions), 0.3))
    task = env.task  # a target 4 cm away in the current orientation
    task.target_pos[0] = task.ee_pos()[0] + torch.tensor([0.03, -0.02, 0.02])
    task.target_quat[0] = task.ee_quat()[0]
    target = task.target_pos[0].double().numpy()
    e0, ik = error(np.zeros(len(jac))), task.ik_step()[0].double().numpy()
    assert 0 < np.abs(ik).max() < 1.0  # not clipped here
    assert 0.85 * e0 < error(0.1 * ik) < 0.95 * e0, (e0, error(0.1 * ik))
    env.close()


def test_gravity_term_lets_a_long_arm_settle_on_target():
    # A held-out-style arm (links longer than any training arm): the controller made of the
    # observation's terms reaches with `gravity_sag`, and settles centimetres short without
    # it (the PD sags under gravity). The term equals MuJoCo's own at-rest bias over kp.
    emb = registry.sample("arm", 100, link_length=(0.30, 0.36))
    cfg = tasks.make_config(
        "reach", randomization=RandomizationCfg.off(), ik_obs=True, gravity_obs=True
    )
    env = BodyEnv(tasks.make_task("reach", emb, cfg), 16, seed=3, num_threads=1)
    env.step(torch.full((16, env.num_actions), 0.4))
    m, d = env.sim.model, mujoco.MjData(env.sim.model)
    d.qpos[:] = env.sim.qpos[0].numpy()
    mujoco.mj_forward(m, d)  # zero velocity: the bias is gravity's
    task = env.task
    dofs = [m.joint(n).dofadr[0] for n in task.joint_names]
    want = d.qfrc_bias[dofs] / task._kp.numpy()
    assert abs(want).max() > 5e-3
    assert np.allclose(task.gravity_sag()[0].numpy(), want, atol=1e-5)

    controller = ReachDiffIKTeacher(env)
    sag = controller.terms["gravity_sag"]

    def without_sag(obs):
        o = obs["policy"].clone()
        o[:, sag] = 0.0
        return controller(o)

    rates = {}
    for name, policy in (("with", controller), ("without", without_sag)):
        with torch.inference_mode():
            env.reset()
            rates[name] = summarize(run_episodes(env, policy, 16))["success_rate"]["mean"]
    env.close()
    assert rates["with"] >= 0.9 and rates["without"] <= 0.3, rates
