"""The MuJoCo Warp backend against the CPU reference, on Warp's CPU device.

Parity tolerance: 5e-3 (m or rad) on every qpos entry and body position after 50 control
steps (200 physics steps, 1 s) of smooth control around the "home" targets. Warp runs in
float32 and has its own solver implementation; CpuSim is float64 MuJoCo. Smooth systems
stay at rounding level (measured ~1e-6 for the humanoid and arm, ~1e-8 for the wheeled
base), but foot impacts amplify differences (quadruped ~1e-3 after 1 s), hence 5e-3.
Per-world isolation (parameters, resets) is checked bit for bit in test_physics_contract.py,
which runs the backend contract on both backends.

The first run compiles Warp kernels (~30-60 s on 2 cores, cached in ~/.cache/warp);
later runs take ~1 s per model.
"""

import mujoco
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco_warp", reason="mujoco-warp is not installed (pip install .[dev])")
import warp as wp  # noqa: E402
from scenes import BOX_AND_ARM  # noqa: E402
from test_physics_contract import _run  # noqa: E402

from xembody.sim import bodies  # noqa: E402
from xembody.sim.physics import CpuSim, make_sim  # noqa: E402
from xembody.sim.physics.warp import WarpSim, buffer_sizes  # noqa: E402

TOL = 5e-3


@pytest.fixture(scope="module")
def box():
    return mujoco.MjModel.from_xml_string(BOX_AND_ARM)


@pytest.mark.parametrize("body_class", ["humanoid", "quadruped", "arm", "wheeled"])
def test_trajectories_match_the_cpu_backend(body_class):
    emb = bodies.sample(body_class, seed=4)
    model = emb.compile()
    n = 3
    warp, cpu = make_sim(model, n, "warp", device="cpu"), CpuSim(model, n, num_threads=1)
    assert torch.allclose(warp.qpos.double(), cpu.qpos, atol=1e-6)
    home = cpu.ctrl.clone()
    assert torch.allclose(warp.ctrl.double(), home, atol=1e-6)  # keyframe targets
    span = torch.tensor(np.subtract(emb.action.high, emb.action.low)).clamp(max=2.0)
    phase = torch.rand(n, model.nu, generator=torch.Generator().manual_seed(0)).double() * 6.28
    for k in range(50):
        u = home + 0.1 * span * torch.sin(phase + 0.2 * k)
        warp.ctrl[:] = u
        cpu.ctrl[:] = u
        warp.step(4)
        cpu.step(4)
    assert (warp.qpos.double() - cpu.qpos).abs().max() < TOL
    assert (warp.body_pos.double() - cpu.body_pos).abs().max() < TOL
    assert (warp.body_quat.double() - cpu.body_quat).abs().max() < TOL
    assert torch.allclose(warp.time.double(), cpu.time, atol=1e-4)
    if model.nsensordata:  # IMU: same readings up to the state difference
        assert (warp.sensordata.double() - cpu.sensordata).abs().max() < 100 * TOL
    assert not warp.diverged.any()


def test_resting_box_contact_force_equals_weight(box):
    sim = WarpSim(box, 2, device="cpu")
    masses = np.tile(box.body_mass, (2, 1))
    b = box.body("box").id
    masses[1, b] *= 3.0
    sim.set_params("body_mass", masses)
    on_floor = np.tile(box.key_qpos[0], (2, 1))
    on_floor[:, 2] = 0.1
    sim.reset(qpos=on_floor)
    for _ in range(100):
        sim.step(2)
    g = -box.opt.gravity[2]
    fz = sim.contact_force[:, b, 2]
    assert fz[0].item() == pytest.approx(1.0 * g, rel=0.02)
    assert fz[1].item() == pytest.approx(3.0 * g, rel=0.02)
    assert torch.allclose(sim.contact_force[:, 0, 2], -fz)  # the floor feels the reaction
    assert torch.allclose(sim.body_pos[:, b], sim.qpos[:, :3])


def test_overflow_is_reported_with_the_buffer_and_the_fix(box):
    nconmax, njmax = buffer_sizes(box)
    assert (nconmax, njmax) == (8, 24)  # one collidable moving geom: 4 contacts; 16 + 7 + 1 rows
    on_floor = np.tile(box.key_qpos[0], (2, 1))
    on_floor[:, 2] = 0.099  # 4 box corners touching: 4 x 4 pyramid rows need 16 > 8
    sim = WarpSim(box, 2, device="cpu", njmax=8)
    sim.reset(qpos=on_floor)
    with pytest.raises(RuntimeError, match=r"NEFC: constraint rows .*njmax=.*dropped"):
        sim.step(2)
    loose = WarpSim(box, 2, device="cpu", njmax=8, on_overflow="warn")
    loose.reset(qpos=on_floor)
    with pytest.warns(RuntimeWarning, match="njmax=8"):
        loose.step(2)


def test_missing_cuda_gives_a_clear_error(box):
    """(The bad-input errors every backend gives: test_physics_contract.py.)"""
    if not wp.is_cuda_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            make_sim(box, 2, "gpu")
    with pytest.raises(ValueError, match="backend='gpu' runs on CUDA"):
        make_sim(box, 2, "gpu", device="cpu")


def test_unsupported_features_are_refused_by_name():
    xml = """<mujoco><option integrator="RK4"/><worldbody><body><freejoint/>
    <geom size=".1"/></body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    try:
        WarpSim(model, 1, device="cpu")
    except ValueError as e:
        assert "MuJoCo Warp cannot simulate this model" in str(e)
    else:  # RK4 is supported in this mujoco_warp version: refuse something else instead
        model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        model.opt.solver = mujoco.mjtSolver.mjSOL_PGS
        with pytest.raises(ValueError, match="MuJoCo Warp cannot simulate this model.*PGS"):
            WarpSim(model, 1, device="cpu")


@pytest.mark.gpu
def test_cuda_graph_step_matches_warp_cpu(box):
    if not wp.is_cuda_available():
        pytest.skip("no CUDA device")
    gpu, cpu = WarpSim(box, 4, device="cuda"), WarpSim(box, 4, device="cpu")
    a, b = _run(gpu), _run(cpu)
    assert gpu.qpos.is_cuda and len(gpu._graphs) == 1  # captured once, replayed
    assert (a.cpu() - b).abs().max() < 1e-3


def _velocity_env_totals(backend: str, n: int = 16, steps: int = 100) -> tuple[float, int]:
    """Summed reward and episode ends of the velocity env on the humanoid, zero actions."""
    from xembody.models.run import resolve_body
    from xembody.sim import tasks
    from xembody.sim.env import BodyEnv

    emb, cfg = resolve_body("humanoid", 0), tasks.make_config("velocity")
    env = BodyEnv(tasks.make_task("velocity", emb, cfg), n, seed=0, backend=backend)
    reward, dones = 0.0, 0
    for _ in range(steps):
        _, r, d, _ = env.step(torch.zeros(n, env.num_actions))
        reward += r.sum().item()
        dones += int(d.sum())
    return reward, dones


def test_the_velocity_env_runs_on_warp_like_on_cpu():
    (r_cpu, d_cpu), (r_warp, d_warp) = map(_velocity_env_totals, ("cpu", "warp:cpu"))
    assert d_warp == d_cpu and d_cpu > 0  # the humanoid falls at the same steps
    assert r_warp == pytest.approx(r_cpu, rel=1e-2)


def _same_draws_env(backend: str, n: int = 16):
    """The velocity env on the humanoid with nothing drawn at random that matters: no
    randomisation, no initial joint noise, no gait clock, fixed commands. CPU and CUDA
    generators draw different numbers; this env is the same on every device."""
    from xembody.models.run import resolve_body
    from xembody.sim import tasks
    from xembody.sim.env import BodyEnv
    from xembody.sim.tasks.base import RandomizationCfg

    cfg = tasks.make_config(
        "velocity", init_joint_noise=0.0, gait_period=0.0, randomization=RandomizationCfg.off()
    )
    task = tasks.make_task("velocity", resolve_body("humanoid", 0), cfg)
    env = BodyEnv(task, n, seed=0, backend=backend)
    task.fixed_commands = torch.linspace(0, 1, n)[:, None].expand(n, 3).to(env.device)
    env.reset()
    return env


def _episode_ends(env, steps: int = 100) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """(step, env id) of every episode end and the per-step rewards (steps, N) on the CPU,
    under a fixed action (+-0.5, alternating by joint) that makes the humanoid fall: with
    zero actions and nothing random it stands, and a test of equal falls would check nothing
    (every env falls at step 60 on cpu and warp:cpu)."""
    ends, rewards = [], []
    action = torch.full((env.num_envs, env.num_actions), 0.5, device=env.device)
    action[:, ::2] *= -1
    for k in range(steps):
        _, r, d, _ = env.step(action)
        ends += [(k, i) for i in d.nonzero().flatten().tolist()]
        rewards.append(r.cpu())
    return ends, torch.stack(rewards)


def _returned_tensors(x, path="out"):
    if isinstance(x, torch.Tensor):
        yield path, x
    elif isinstance(x, dict) or hasattr(x, "items"):
        for k, v in x.items():
            yield from _returned_tensors(v, f"{path}[{k!r}]")
    elif isinstance(x, (tuple, list)):
        for k, v in enumerate(x):
            yield from _returned_tensors(v, f"{path}[{k}]")


def _check_env_on_its_device(backend: str) -> None:
    """Every tensor the env returns, and every tensor the env and its task keep, lives on
    env.device == env.sim.device, through steps with falls, resets and pushes."""
    from xembody.models.run import resolve_body
    from xembody.sim import tasks
    from xembody.sim.env import BodyEnv
    from xembody.sim.tasks.base import RandomizationCfg

    r = RandomizationCfg(push_interval_s=0.1, action_latency=(0, 2))
    cfg = tasks.make_config("velocity", randomization=r, resample_s=0.1)
    env = BodyEnv(tasks.make_task("velocity", resolve_body("humanoid", 0), cfg), 8, backend=backend)
    assert env.device == env.sim.device == env.sim.qpos.device
    outs, finished = [env.get_observations()], 0
    for _ in range(60):
        out = env.step(torch.ones(8, env.num_actions, device=env.device))
        outs.append(out)
        finished += int(out[2].sum())
    assert finished > 0  # resets ran
    kept = [(f"env.{k}", v) for k, v in vars(env).items()]
    kept += [(f"task.{k}", v) for k, v in vars(env.task).items() if k != "fixed_commands"]
    for name, t in [*_returned_tensors(outs), *_returned_tensors(dict(kept))]:
        assert t.device == env.device, f"{name} is on {t.device}, env on {env.device}"


def test_the_env_keeps_every_tensor_on_the_sims_device():
    _check_env_on_its_device("warp:cpu")


@pytest.mark.gpu
def test_the_velocity_env_on_the_gpu_backend_matches_warp_cpu():
    if not wp.is_cuda_available():
        pytest.skip("no CUDA device")
    _check_env_on_its_device("gpu")
    gpu, cpu = _same_draws_env("gpu"), _same_draws_env("warp:cpu")
    assert gpu.device.type == "cuda" and gpu.get_observations()["policy"].is_cuda
    (ends_gpu, r_gpu), (ends_cpu, r_cpu) = _episode_ends(gpu), _episode_ends(cpu)
    assert ends_gpu == ends_cpu and len(ends_cpu) > 0  # the same falls at the same steps
    assert r_gpu.sum().item() == pytest.approx(r_cpu.sum().item(), rel=1e-2)


def test_training_runs_on_the_warp_backend(tmp_path):
    import json

    from xembody.models.training import TrainConfig, train

    common = dict(task="velocity", num_envs=4, steps_per_env=8, threads=1,
                  log_root=str(tmp_path), save_interval=100)  # fmt: skip
    run = train(TrainConfig(backend="warp:cpu", iterations=2, **common))
    lines = [json.loads(x) for x in (run / "ranks" / "rank0.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and len({x["params_sha1"] for x in lines}) == 2
    assert all(np.isfinite(x["mean_reward"]) for x in lines)
    assert json.loads((run / "run.json").read_text())["settings"]["backend"] == "warp:cpu"
    with pytest.raises(ValueError, match="backend='tpu'"):
        TrainConfig(backend="tpu")
    if not wp.is_cuda_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            train(TrainConfig(backend="gpu", iterations=1, **common))


@pytest.mark.gpu
def test_a_run_trained_on_the_gpu_evaluates_there(tmp_path):
    """`xembody eval --backend gpu` of a run: the policy is put on the env's device (it was
    built on the CPU and met the CUDA env's observations; found by benchmarks/gpu_check.sh)."""
    if not wp.is_cuda_available():
        pytest.skip("no CUDA device")
    from xembody.evaluate import EvalConfig, evaluate
    from xembody.models.training import TrainConfig, train

    run = train(TrainConfig(task="velocity", backend="gpu", num_envs=16, steps_per_env=8,
                            iterations=1, threads=1, log_root=str(tmp_path)))  # fmt: skip
    result = evaluate(EvalConfig(checkpoint=str(run), backend="gpu", episodes=4, num_envs=4))
    assert result["backend"] == "gpu" and result["episode_length_steps"]["mean"] > 0
    # and on the CPU backend: its CUDA tensors are mapped to the CPU when loaded
    result = evaluate(EvalConfig(checkpoint=str(run), backend="cpu", episodes=4, num_envs=4))
    assert result["backend"] == "cpu" and result["episode_length_steps"]["mean"] > 0


_VIEWS = ("qpos", "qvel", "sensordata", "contact_force", "body_pos", "body_quat", "time",
          "ctrl", "mocap_pos", "diverged")  # fmt: skip


def _velocity_model(body: str = "quadruped"):
    from xembody.models.run import resolve_body
    from xembody.sim import tasks

    task = tasks.make_task("velocity", resolve_body(body, 0), tasks.make_config("velocity"))
    return task.build_model()


def test_a_few_worlds_reset_on_a_scratch_batch_like_on_the_whole_batch():
    """Resets and mass changes of a few worlds run on a scratch batch (`scratch_max`): the
    reset worlds end up bit for bit as with the whole-batch forward/set_const, the others
    are not written at all (views and per-world model fields), and later steps agree."""
    from xembody.sim.physics.warp import _BATCHED

    model, n, ids = _velocity_model(), 8, torch.tensor([1, 5])
    whole, scratch = WarpSim(model, n, device="cpu"), WarpSim(model, n, device="cpu")
    whole.scratch_max, scratch.scratch_max = 0, n
    g = torch.Generator().manual_seed(0)
    for _ in range(15):  # walk into contacts, so the sensors and forces are not trivial
        u = 0.3 * torch.randn(n, model.nu, generator=g)
        for sim in (whole, scratch):
            sim.ctrl[:] = u
            sim.step(4)
    keep = [i for i in range(n) if i not in ids.tolist()]

    def state(sim):
        views = {f: getattr(sim, f).clone() for f in _VIEWS}
        return views | {f: sim._field(f).clone() for f in _BATCHED}

    before = {"whole": state(whole), "scratch": state(scratch)}
    qpos = whole.qpos[ids].clone()
    qpos[:, 2] += 0.05
    for sim in (whole, scratch):
        sim.set_params("body_mass", sim.get_params("body_mass")[ids] * 1.1, ids)
        sim.reset(ids, qpos=qpos, qvel=torch.full((2, model.nv), 0.1))
    after = {"whole": state(whole), "scratch": state(scratch)}
    assert scratch._scratch and not whole._scratch  # each took its own path
    for f in after["whole"]:
        assert torch.equal(after["whole"][f][ids], after["scratch"][f][ids]), f
        for path in after:
            assert torch.equal(after[path][f][keep], before[path][f][keep]), (path, f)
    assert not torch.equal(after["scratch"]["body_invweight0"][ids], before["scratch"][
        "body_invweight0"][ids])  # fmt: skip
    for _ in range(5):
        for sim in (whole, scratch):
            sim.ctrl[:] = 0.1
            sim.step(4)
    for f in ("qpos", "qvel", "sensordata", "contact_force"):
        assert torch.equal(getattr(whole, f), getattr(scratch, f)), f


@pytest.mark.gpu
def test_mass_changes_of_a_few_worlds_replay_one_cuda_graph_like_warp_cpu():
    """On CUDA the scratch batch's set_const (a few hundred launches) is captured once and
    replayed for later worlds: the derived constants match Warp's CPU device."""
    if not wp.is_cuda_available():
        pytest.skip("no CUDA device")
    from xembody.sim.physics.warp import _DERIVED

    model, n = _velocity_model("humanoid"), 8
    gpu, cpu = WarpSim(model, n, device="cuda"), WarpSim(model, n, device="cpu")
    for ids, scale in ((torch.tensor([1, 5]), 1.1), (torch.tensor([2, 3]), 0.9)):
        for sim in (gpu, cpu):
            sim.set_params("body_mass", sim.get_params("body_mass")[ids] * scale, ids)
    (scratch,) = gpu._scratch.values()  # one batch size, its set_const graph replayed
    assert "set_const" in scratch.graphs
    for f in _DERIVED:
        a, b = gpu._field(f).cpu(), cpu._field(f)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), f
    assert not torch.allclose(gpu._field("body_invweight0")[2].cpu(), cpu._field(
        "body_invweight0")[0])  # fmt: skip


def test_nan_in_a_reset_raises_and_device_ids_are_not_range_checked(box):
    sim = WarpSim(box, 4, device="cpu")
    with pytest.raises(ValueError, match="qvel contains NaN"):
        sim.reset([1], qvel=torch.full((1, box.nv), float("nan")))
    with pytest.raises(ValueError, match="geom_friction: values contains NaN"):
        sim.set_params("geom_friction", torch.full((1, box.ngeom, 3), float("nan")), [0])
    sim.reset(torch.tensor([3]), qpos=sim.qpos[[3]])  # a CPU tensor: checked and accepted


def _bookkeeping(backend: str, steps: int = 40) -> dict:
    """The velocity env on the quadruped with pushes every ~0.1 s, 0.3 s episodes and
    forced falls (envs 1 and 4 tilted past max_tilt at steps 7 and 23): per step, the
    time-outs, the finished records and the pushed env ids."""
    from xembody.models.run import resolve_body
    from xembody.sim import tasks
    from xembody.sim.env import BodyEnv
    from xembody.sim.tasks.base import RandomizationCfg

    r = RandomizationCfg(push_interval_s=0.1, action_latency=(0, 1))
    cfg = tasks.make_config("velocity", randomization=r, episode_seconds=0.3)
    env = BodyEnv(
        tasks.make_task("velocity", resolve_body("quadruped", 0), cfg), 6, backend=backend
    )
    pushed: list[tuple[int, list[int]]] = []
    push = env._push
    env._push = lambda ids: (pushed.append((k, ids.tolist())), push(ids))  # noqa: B023
    out = {"time_outs": [], "finished": [], "returns": []}
    zeros = torch.zeros(6, env.num_actions)
    for k in range(steps):
        if k in (7, 23):
            ids = torch.tensor([1, 4])
            qpos = env.sim.qpos[ids].clone()
            qpos[:, 3:7] = torch.tensor([np.cos(0.65), np.sin(0.65), 0.0, 0.0])  # 1.3 rad roll
            env.sim.reset(ids, qpos=qpos)
        _, _, dones, extras = env.step(zeros)
        out["time_outs"].append(extras["time_outs"].tolist())
        if "finished" in extras:
            f = extras["finished"]
            out["finished"] += [
                (k, *row)
                for row in zip(
                    *(f[c].tolist() for c in ("env_ids", "terminated", "length")), strict=True
                )
            ]
            out["returns"] += f["return"].tolist()
        assert dones.sum() == len(extras.get("finished", {}).get("env_ids", []))
    out["pushed"] = pushed
    return out


def test_the_env_keeps_its_bookkeeping_on_warp_with_falls_and_pushes():
    cpu, warp = _bookkeeping("cpu"), _bookkeeping("warp:cpu")
    for key in ("time_outs", "finished", "pushed"):
        assert warp[key] == cpu[key], key
    assert {(k, i) for k, i, term, _ in cpu["finished"] if term} >= {(7, 1), (7, 4), (23, 1)}
    assert any(not term for _, _, term, _ in cpu["finished"])  # time-outs too
    assert sum(len(ids) for _, ids in cpu["pushed"]) > 10
    assert warp["returns"] == pytest.approx(cpu["returns"], rel=0.05, abs=0.05)
