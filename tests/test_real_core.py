"""The ROS-free core under the ROS 2 nodes: observation builder (equal to the sim env's
observation for the same state), action mapping, safety filter, input checks, loop timing."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from xembody.models.export import policy_contract
from xembody.real.observation import ActionMap, Command, ObservationBuilder, twist_to_wheels
from xembody.real.robot import RobotState
from xembody.real.safety import JointLimits, SafetyConfig, SafetyFilter
from xembody.real.timing import LoopTimer
from xembody.real.validate import InputError, JointStateCheck, RateGate
from xembody.sim import bodies, tasks
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg


def reading_from_env(env: BodyEnv) -> RobotState:
    """What a robot driver would report for env 0: joints by name, IMU, odometry."""
    task, m = env.task, env.sim.model
    emb = task.emb
    qpos, qvel = env.sim.qpos[0].double().numpy(), env.sim.qvel[0].double().numpy()
    sens = env.sim.sensordata[0].double().numpy()
    ids = [m.joint(n).id for n in emb.joint_names]
    s = RobotState(
        stamp=0.0,
        joint_names=emb.joint_names,
        q=qpos[m.jnt_qposadr[ids]],
        dq=qvel[m.jnt_dofadr[ids]],
        tau=np.zeros(len(ids)),
    )
    for name in ("imu_quat", "imu_gyro"):
        if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, name) >= 0:
            a, d = m.sensor(name).adr[0], m.sensor(name).dim[0]
            setattr(s, name, sens[a : a + d])
    free = [j for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    if free:
        qa, da = m.jnt_qposadr[free[0]], m.jnt_dofadr[free[0]]
        s.base_pos, s.base_quat = qpos[qa : qa + 3], qpos[qa + 3 : qa + 7]
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, s.base_quat)
        s.base_lin_vel = rot.reshape(3, 3).T @ qvel[da : da + 3]  # body frame, as odometry
        s.base_ang_vel = qvel[da + 3 : da + 6]
    return s


def reach_obs_at_current_state(env: BodyEnv, contract: dict, obs: np.ndarray) -> np.ndarray:
    """The env's reach observation with its end-effector sensors evaluated at the current
    joint positions: MuJoCo computes sensordata before the last substep's integration, so
    the env's ee terms lag one physics step (2-3 mm here); a robot's FK does not."""
    from xembody.sim.tasks.math import axis_angle_error

    m, d = env.sim.model, mujoco.MjData(env.sim.model)
    d.qpos[:] = env.sim.qpos[0].numpy()
    mujoco.mj_forward(m, d)
    read = lambda n: d.sensordata[m.sensor(n).adr[0] : m.sensor(n).adr[0] + m.sensor(n).dim[0]]  # noqa: E731
    ee, quat = read("ee_pos"), read("ee_quat")
    task = env.task
    values = {
        "ee_pos": ee,
        "pos_error": task.target_pos[0].numpy() - ee,
        "rot_error": axis_angle_error(torch.from_numpy(quat)[None].float(), task.target_quat[:1])[
            0
        ].numpy(),
    }
    jids = [m.joint(n).id for n in task.joint_names]
    column = np.cross(d.xaxis[jids], ee - d.xanchor[jids])
    values["jac_pos_error"] = 10.0 * column @ values["pos_error"]
    values["jac_rot_error"] = d.xaxis[jids] @ values["rot_error"]
    cfg = task.cfg  # the damped-least-squares step, the same way from the same kinematics
    jac = np.concatenate([column, cfg.ik_rot_weight * d.xaxis[jids]], 1).T
    err = np.concatenate([values["pos_error"], cfg.ik_rot_weight * values["rot_error"]])
    gram = jac @ jac.T + cfg.ik_damping**2 * np.eye(6)
    values["ik_step"] = np.clip(jac.T @ np.linalg.solve(gram, err), -1.0, 1.0)
    kp = [m.actuator_gainprm[list(m.actuator_trnid[:, 0]).index(j), 0] for j in jids]
    values["gravity_sag"] = d.qfrc_bias[m.jnt_dofadr[jids]] / kp  # at rest: gravity only
    out = obs.copy()
    for t in contract["observation"]["terms"]:
        if t["name"] in values:
            out[t["start"] : t["start"] + t["size"]] = values[t["name"]]
    return out


def command_from_task(task) -> Command:
    c = Command()
    if task.name == "reach":
        c.target_pos, c.target_quat = task.target_pos[0].numpy(), task.target_quat[0].numpy()
    elif task.name == "navigate":
        c.goal, c.ranges = task.goal[0].numpy(), task.ranges()[0].numpy()
    else:
        c.twist = tuple(task.commands[0].tolist())
    return c


@pytest.mark.parametrize(
    ("task_name", "body", "seed", "extra"),
    [
        ("reach", "arm", 0, {}),
        ("reach", "arm", 1, {"jacobian_obs": True}),  # the generalist's per-joint terms
        ("reach", "arm", 2, {"jacobian_obs": True, "ik_obs": True, "gravity_obs": True}),
        ("navigate", "wheeled", 1, {}),
        ("velocity", "quadruped", 0, {}),
    ],
)
def test_observation_equals_the_sim_envs(task_name, body, seed, extra):
    emb = bodies.sample(body, seed=seed)
    cfg = tasks.make_config(task_name, randomization=RandomizationCfg.off(), **extra)
    env = BodyEnv(tasks.make_task(task_name, emb, cfg), 1, seed=2, num_threads=1)
    contract = policy_contract(env)
    builder = ObservationBuilder(contract, emb)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(30):
        env.step(torch.from_numpy(rng.uniform(-1, 1, (1, env.num_actions))).float())
        if task_name == "velocity":
            builder.phase = float(env.task.phase[0])
        obs = env.get_observations()  # the critic's first columns: the policy's, noise-free
        want = obs["critic"][0, : obs["policy"].shape[1]].numpy()
        if task_name == "reach":
            want = reach_obs_at_current_state(env, contract, want)
        state = reading_from_env(env)
        state.joint_names = state.joint_names[::-1]  # order must not matter: by name
        state.q, state.dq = state.q[::-1], state.dq[::-1]
        check = JointStateCheck(emb.joint_names)
        state.q, state.dq, _ = check(
            state.joint_names, state.q, state.dq, [], 1.0
        )  # back into our order by name
        got = builder(state, command_from_task(env.task), env.task.actions[0].numpy())
        worst = max(worst, float(np.abs(got - want).max()))
    env.close()
    assert got.shape == want.shape
    assert worst < 1e-4, worst


def test_ring_scan_reads_what_the_navigation_rangefinders_read():
    from xembody.real.observation import ring_scan

    emb = bodies.sample("wheeled", seed=1)
    cfg = tasks.make_config("navigate", randomization=RandomizationCfg.off(), obstacle_prob=1.0)
    env = BodyEnv(tasks.make_task("navigate", emb, cfg), 1, seed=5, num_threads=1)
    for _ in range(5):
        env.step(torch.tensor([[1.0, 0.5]]))
    m, d = env.sim.model, mujoco.MjData(env.sim.model)
    d.qpos[:] = env.sim.qpos[0].numpy()
    d.mocap_pos[:] = env.sim.mocap_pos[0].numpy()
    mujoco.mj_forward(m, d)
    task = env.task
    adr = m.sensor("range_0").adr[0]
    want = d.sensordata[adr : adr + cfg.num_rays]
    got = ring_scan(m, d, m.body(emb.sensors.base_body).id, task.ring_height, 16, 1e9)
    env.close()
    hit = want >= 0
    assert ((want >= 0) & (want < cfg.ray_range)).sum() >= 1  # an obstacle within range
    assert np.allclose(got[hit], want[hit], atol=1e-6) and np.isinf(got[~hit]).all()


def test_gait_clock_advances_one_period_per_gait_period():
    emb = bodies.sample("quadruped", seed=0)
    env = BodyEnv(tasks.make_task("velocity", emb), 1, num_threads=1)
    builder = ObservationBuilder(policy_contract(env), emb)
    period = env.cfg.gait_period
    env.close()
    for _ in range(10):  # ten tenths of one period
        builder.advance(period / 10)
    assert builder.phase == pytest.approx(0.0, abs=1e-9) or builder.phase == pytest.approx(1.0)


def test_dls_step_matches_the_formula_in_numpy_and_torch():
    """dq = J^T (J J^T + damping^2 I)^-1 err: J = diag(1, 2), err = (1, 1) gives J^-1 err =
    (1, 0.5) undamped and J^T diag(2, 5)^-1 err = (0.5, 0.4) at damping 1."""
    from xembody.sim.tasks.math import dls_pinv, dls_step

    jac, err = np.diag([1.0, 2.0]), np.ones(2)
    np.testing.assert_allclose(dls_step(jac, err, 0.0), [1.0, 0.5])
    np.testing.assert_allclose(dls_step(jac, err, 1.0), [0.5, 0.4])
    np.testing.assert_allclose(dls_pinv(jac, 1.0) @ err, [0.5, 0.4])
    batch = torch.tensor(np.stack([jac, 2 * jac]))  # (2, 2, 2): one step per row
    out = dls_step(batch, torch.ones(2, 2, dtype=batch.dtype), 1.0)
    np.testing.assert_allclose(out[0].numpy(), [0.5, 0.4])
    np.testing.assert_allclose(out[1].numpy(), dls_step(2 * jac, err, 1.0))


def test_task_maths_loads_without_torch_for_the_robot_side():
    """The ROS nodes use the tasks' quaternion helpers on numpy rows and start without torch."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "import xembody.real.observation\n"
        "from xembody.sim.tasks.math import quat_rotate, yaw_of\n"
        "q = np.array([np.cos(0.25), 0, 0, np.sin(0.25)])\n"
        "print('torch' in sys.modules, round(float(yaw_of(q)), 6), quat_rotate(q, np.eye(3)[0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    torch_loaded, yaw, *_ = out.stdout.split()
    assert torch_loaded == "False" and float(yaw) == 0.5


def test_action_map_and_wheels():
    emb = bodies.sample("wheeled", seed=1)
    contract = {
        "action": {"mapping": "body_twist", "action_scale": 0.5, "action_clip": 3.0},
        "task_cfg": {"turn_scale": 1.0},
        "joint_names": list(emb.joint_names),
        "default_pose": emb.default_pose.tolist(),
    }
    amap = ActionMap(contract, emb)
    assert np.allclose(amap.twist([10.0, -1.0]), [1.5, 0.0, -1.0])  # clipped to 3 first
    wheels = twist_to_wheels(emb, np.array([0.2, 0.0, 0.0]))
    assert np.allclose(wheels, 0.2 / emb.params["wheel_radius"])
    with pytest.raises(ValueError, match="sideways"):
        twist_to_wheels(emb, np.array([0.0, 0.3, 0.0]))


# --- safety --------------------------------------------------------------------------------
@pytest.fixture
def arm_filter() -> SafetyFilter:
    emb = bodies.sample("arm", seed=0)
    return SafetyFilter(SafetyConfig(ramp_s=0.5), JointLimits.from_embodiment(emb))


def test_safety_ramps_holds_and_resumes(arm_filter):
    f, lim = arm_filter, arm_filter.limits
    f.cfg.plausible_margin = 1.0  # the readings below teleport the arm
    n = len(lim.names)
    q0 = np.clip(np.zeros(n), lim.low, lim.high)
    goal = np.clip(q0 + 0.3, lim.low, lim.high)
    assert f.output(0.0) is None  # nothing before the first state
    t, outs = 0.0, []
    for _ in range(40):  # 0.4 s of 100 Hz ticks, state (tracking the output) and command fresh
        f.state(t, outs[-1] if outs else q0, np.zeros(n))
        f.command(t, goal)
        outs.append(f.output(t))
        t += 0.01
    frac = (outs[20] - q0) / (goal - q0 + 1e-12)
    moving = np.abs(goal - q0) > 1e-6
    assert np.allclose(frac[moving], 0.2 / 0.5, atol=0.03)  # soft start: 40% after 0.2 s
    assert f.mode == "ramp"
    for _ in range(20):
        f.state(t, outs[-1], np.zeros(n))
        f.command(t, goal)
        outs.append(out := f.output(t))
        t += 0.01
    assert f.mode == "active" and np.allclose(out, goal)
    # commands stop: held at the measured pose once command_timeout_s (0.1 s) passes
    q1 = q0 + 0.1 * moving
    t_stop = t
    while f.mode != "hold":
        f.state(t, q1, np.zeros(n))
        out = f.output(t)
        t += 0.01
    assert 0.1 <= t - t_stop <= 0.13 and "command stale" in f.reason
    for _ in range(10):  # the hold pose is reached at the rate bound, not in one jump
        prev = out
        f.state(t, q1, np.zeros(n))
        out = f.output(t)
        assert (np.abs(out - prev) <= lim.velocity * 0.01 + 1e-9).all()
        t += 0.01
    assert np.allclose(out, np.clip(q1, lim.low, lim.high))
    for _ in range(30):  # held for 0.3 s, longer than blip_s
        f.state(t, q1, np.zeros(n))
        f.output(t)
        t += 0.01
    # commands return: a fresh soft start from the measured pose
    f.command(t, goal)
    f.state(t, q1, np.zeros(n))
    assert np.allclose(f.output(t), np.clip(q1, lim.low, lim.high)) and f.mode == "ramp"


def test_safety_short_watchdog_blip_does_not_restart_the_ramp(arm_filter):
    f, lim = arm_filter, arm_filter.limits
    f.cfg.ramp_s = 0.0
    n = len(lim.names)
    q = (lim.low + lim.high) / 2
    goal = q + 0.01 * (np.arange(n) < n - 1)  # the gripper's effort limit allows less
    for k in range(5):
        f.state(0.01 * k, q, np.zeros(n))
        f.command(0.01 * k, goal)
        f.output(0.01 * k)
    assert f.mode == "active"
    f.state(0.05, q, np.zeros(n))
    f.output(0.11)  # state 60 ms old: hold
    assert f.mode == "hold"
    f.state(0.12, q, np.zeros(n))
    f.command(0.12, goal)
    assert np.allclose(f.output(0.12), goal) and f.mode == "active"  # no new soft start


def test_safety_state_stale_estop_and_limits(arm_filter):
    f, lim = arm_filter, arm_filter.limits
    n = len(lim.names)
    q = (lim.low + lim.high) / 2
    f.state(0.0, q, np.zeros(n))
    f.command(0.0, q)
    f.output(0.0)
    f.command(0.06, q)
    out = f.output(0.06)  # state 60 ms old > 50 ms
    assert f.mode == "hold" and "joint state stale" in f.reason and np.allclose(out, q)
    bad = q.copy()
    bad[2] = lim.high[2] + 0.5
    with pytest.raises(ValueError, match=f"joint '{lim.names[2]}' target .* beyond its limits"):
        f.command(0.07, bad)
    with pytest.raises(ValueError, match="is nan"):
        f.command(0.07, np.full(n, np.nan))
    assert f.counts["rejected"] == 2
    f.estop("operator")
    f.state(0.08, q, np.zeros(n))
    f.command(0.08, q)
    f.output(0.08)
    assert f.mode == "estop"
    f.reset()
    f.output(0.09)
    assert f.mode == "ramp"


def test_safety_effort_limit_bounds_the_pd_torque(arm_filter):
    f, lim = arm_filter, arm_filter.limits
    f.cfg.ramp_s = 0.0
    n = len(lim.names)
    q, dq = (lim.low + lim.high) / 2, np.full(n, 0.5)
    f.state(0.0, q, dq)
    f.command(0.0, lim.high)  # far: would need more than the effort limit
    out = f.output(0.0)
    torque = lim.kp * (out - q) - lim.kd * dq
    assert (np.abs(torque) <= lim.effort + 1e-9).all()
    assert f.counts["limited"] == 1


# --- input checks ----------------------------------------------------------------------------
def test_joint_state_check_rejects_each_bad_input():
    check = JointStateCheck(("a", "b", "c"))
    q, dq, _ = check(("c", "a", "b"), [3, 1, 2], [30, 10, 20], [], 1.0)
    assert q.tolist() == [1, 2, 3] and dq.tolist() == [10, 20, 30]
    cases = [
        ((("a", "b", "c"), [1, 2], [1, 2, 3], [], 2.0), "3 names but 2 position"),
        ((("a", "a", "c"), [1, 2, 3], [1, 2, 3], [], 2.0), r"duplicate joint name\(s\) \['a'\]"),
        ((("x", "y"), [1, 2], [1, 2], [], 2.0), "none of its joints"),
        ((("a", "b", "c"), [1, np.nan, 3], [1, 2, 3], [], 2.0), "position of joint 'b' is nan"),
        ((("a", "b", "c"), [1, 2, 3], [np.inf, 2, 3], [], 2.0), "velocity of joint 'a' is inf"),
        ((("a", "b", "c"), [1, 2, 3], [1, 2, 3], [], 0.5), "not after the previous"),
    ]
    for args, pattern in cases:
        with pytest.raises(InputError, match=pattern):
            check(*args)
    assert check(("a", "b", "c"), [1, 2, 3], [1, 2, 3], [], 2.0)[0].tolist() == [1, 2, 3]
    fresh = JointStateCheck(("a", "b", "c"))
    with pytest.raises(InputError, match=r"missing joint name\(s\) \['c'\]") as err:
        fresh(("a", "b"), [1, 2], [1, 2], [], 1.0)
    assert err.value.kind == "partial"


def test_rate_gate_passes_the_rate_and_drops_a_flood():
    gate = RateGate(100.0, burst=3)
    ok = 0
    for k in range(1000):  # 1000 messages in one second: 10x the allowed rate
        try:
            gate(k * 0.001)
            ok += 1
        except InputError as err:
            assert err.kind == "flood" and "faster than 100 Hz" in str(err)
    assert 95 <= ok <= 106 and gate.dropped == 1000 - ok


def test_loop_timer_reports_rate_jitter_and_misses():
    timer = LoopTimer(0.02)
    t = 0.0
    for k in range(101):
        timer.tick(t)
        t += 0.02 + (0.02 if k == 50 else 0.0) + (0.001 if k % 2 else -0.001)
    r = timer.report()
    assert r["missed"] == 1 and r["ticks"] == 101
    assert 49.0 < r["rate_hz"] < 50.0 and 0.9 < r["jitter_ms"] < 2.5


def test_damp_mode_follows_the_measured_pose_while_stale():
    emb = bodies.sample("arm", seed=0)
    f = SafetyFilter(SafetyConfig(stale_mode="damp"), JointLimits.from_embodiment(emb))
    lim, n = f.limits, len(emb.joint_names)
    q = (lim.low + lim.high) / 2
    f.state(0.0, q, np.zeros(n))
    f.command(0.0, q)
    f.output(0.0)
    out = f.output(0.2)  # command and state stale
    assert f.mode == "hold" and np.allclose(out, q)
    f.state(0.21, q + 0.05, np.zeros(n))  # the arm is pushed: the target gives way
    assert np.allclose(f.output(0.3), np.clip(q + 0.05, lim.low, lim.high))
