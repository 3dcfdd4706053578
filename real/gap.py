"""Measuring the sim-to-proxy gap of a sim-trained policy in closed loop.

`RobotSim` puts N single robots (`SimRobot` for the nominal simulator, `ProxyRobot` for the
real-proxy) behind the batched-physics contract, so that the policy's own task draws the
targets and commands and computes rewards and metrics as in training. The policy itself
runs as on a robot: one `PolicyController` per robot (`xembody.real.controller`, the
code the ROS policy node runs) builds the observation from the robot's *readings* (joint
readings with the proxy's sensor noise and bias; IMU and odometry read from the physics)
and the task's command, runs the network and maps and clips the action into targets.
Only the dynamics differ between the cases compared: same exported policy, same
controller and task code, same seeds, and the same stepping code (the nominal case is a
`SimRobot` run through this class too).

Each control period the controllers' targets go through the optional adapter, then to the
robots. The adapter runs here, batched over the N robots (one `ActionAdapter` keeps all N
histories; a controller's own adapter slot is the N = 1 case of the same call). With
`predict=True` the controllers are fed the adapter's prediction of the readings
`adapter.delay` periods ahead instead (a Smith predictor), and the task's sensors are
recomputed for that predicted joint state. Joint tracking error:
mean over the policy's joints and all periods of |q_true(t+1) - desired(t)| (rad), true
positions without sensor error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
import torch

from xembody.models.cfg import help_field
from xembody.models.dynamics import DynamicsConfig
from xembody.real.adapt import AdaptConfig
from xembody.real.observation import Command
from xembody.real.proxy import RobotConfig, dataset_robot
from xembody.real.robot import RobotState, SimRobot, target_limits
from xembody.sim.bodies import reference as body_ref
from xembody.sim.physics.backend import BatchedSim, param_shape
from xembody.sim.physics.cpu import _read_param, _write_param


class RobotSim(BatchedSim):
    """N robots (all on one model) as a `BatchedSim`; `adapter(q, dq, desired) -> command`
    ((N, nj) arrays) is applied between the task and the robots when given."""

    def __init__(self, robots: list[SimRobot], adapter=None, measure: list[int] | None = None,
                 predict: bool = False):  # fmt: skip
        self.robots, self.adapter = robots, adapter
        self.predict = predict and adapter is not None
        self.model = robots[0].model
        self.num_envs = len(robots)
        self.device = torch.device("cpu")
        self.nj = robots[0].num_joints
        self.measure = list(range(self.nj)) if measure is None else list(measure)
        m, n = self.model, self.num_envs
        self.ctrl = torch.zeros(n, m.nu, dtype=torch.float64)
        self._qpos, self._qvel = torch.zeros(n, m.nq, dtype=torch.float64), torch.zeros(n, m.nv)
        self._qvel = self._qvel.double()
        self._sensor = torch.zeros(n, m.nsensordata, dtype=torch.float64)
        self._time = torch.zeros(n, dtype=torch.float64)
        self._diverged = torch.zeros(n, dtype=torch.bool)
        self._q = np.zeros((n, self.nj))
        self._dq = np.zeros((n, self.nj))
        self._obs = (self._q, self._dq)  # what the policy sees of the joints
        self._scratch: dict[int, mujoco.MjData] = {}
        self.desired: np.ndarray | None = None  # (N, nj) targets from controllers, if set
        self.error_sum, self.error_steps = 0.0, 0
        self.sat_error_sum, self.sat_steps = 0.0, 0  # periods ending torque-saturated
        self.reset()

    qpos = property(lambda self: self._qpos)
    qvel = property(lambda self: self._qvel)
    sensordata = property(lambda self: self._sensor)
    time = property(lambda self: self._time)
    diverged = property(lambda self: self._diverged)

    @property
    def mocap_pos(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([r.data.mocap_pos.copy() for r in self.robots]))

    @property
    def body_pos(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._kin(r).xpos.copy() for r in self.robots]))

    @property
    def body_quat(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._kin(r).xquat.copy() for r in self.robots]))

    @property
    def contact_force(self) -> torch.Tensor:
        out = np.zeros((self.num_envs, self.model.nbody, 3))
        f6 = np.zeros(6)
        for i, r in enumerate(self.robots):
            m, d = r.model, self._kin(r, forward=True)
            for c in range(d.ncon):
                con = d.contact[c]
                mujoco.mj_contactForce(m, d, c, f6)
                world = con.frame.reshape(3, 3).T @ f6[:3]
                out[i, m.geom_bodyid[con.geom[1]]] += world
                out[i, m.geom_bodyid[con.geom[0]]] -= world
        return torch.from_numpy(out)

    def _kin(self, r: SimRobot, forward: bool = False) -> mujoco.MjData:
        d = mujoco.MjData(r.model)
        d.qpos[:], d.qvel[:], d.mocap_pos[:] = r.data.qpos, r.data.qvel, r.data.mocap_pos
        (mujoco.mj_forward if forward else mujoco.mj_kinematics)(r.model, d)
        return d

    # --- stepping -----------------------------------------------------------------------
    def step(self, substeps: int = 1) -> None:
        if substeps != self.robots[0].substeps:
            raise ValueError(f"substeps={substeps}, the robots step {self.robots[0].substeps}")
        if self.desired is not None:  # the controllers' targets (else what the task wrote)
            self.ctrl[:, : self.nj] = torch.from_numpy(self.desired)
        desired = self.ctrl[:, : self.nj].numpy().copy()
        command = desired if self.adapter is None else self.adapter(self._q, self._dq, desired)
        err = np.zeros(self.num_envs)
        sat = np.zeros(self.num_envs, dtype=bool)
        for i, r in enumerate(self.robots):
            t0 = r.data.time
            r.send(command[i])
            s = r.step()
            self._q[i], self._dq[i] = s.q, s.dq
            q_true = r.data.qpos[r.qadr]
            err[i] = np.abs(q_true - desired[i])[self.measure].mean()
            sat[i] = self._saturated(r)
            if r.data.time < t0 + (substeps - 0.5) * r.model.opt.timestep:
                self._diverged[i] = True
        self.error_sum += float(err.sum())
        self.error_steps += self.num_envs
        self.sat_error_sum += float(err[sat].sum())
        self.sat_steps += int(sat.sum())
        self._observe()
        self._refresh()

    def _saturated(self, r: SimRobot) -> bool:
        """Whether a measured joint's actuator ended the period at its force limit."""
        ids = r.act_ids[self.measure]
        f, (lo, hi) = r.data.actuator_force[ids], r.model.actuator_forcerange[ids].T
        limited = r.model.actuator_forcelimited[ids].astype(bool)
        return bool((limited & ((f >= 0.999 * hi) | (f <= 0.999 * lo))).any())

    def _observe(self) -> None:
        q, dq = self._q.copy(), self._dq.copy()
        self._obs = self.adapter.predict(q, dq) if self.predict else (q, dq)

    def _refresh(self, ids=None) -> None:
        for i in range(self.num_envs) if ids is None else ids:
            r = self.robots[i]
            qpos = r.data.qpos.copy()
            qpos[r.qadr] = self._obs[0][i]  # the policy sees the readings (or predictions)
            qvel = r.data.qvel.copy()
            qvel[r.dadr] = self._obs[1][i]
            self._qpos[i], self._qvel[i] = torch.from_numpy(qpos), torch.from_numpy(qvel)
            sensors = r.data.sensordata
            if self.predict:  # sensors of the predicted state (exact for fixed bases)
                d = self._scratch.setdefault(i, mujoco.MjData(r.model))
                d.qpos[:], d.qvel[:], d.mocap_pos[:] = qpos, qvel, r.data.mocap_pos
                d.ctrl[:] = r.data.ctrl
                mujoco.mj_forward(r.model, d)
                sensors = d.sensordata
            self._sensor[i] = torch.from_numpy(sensors.copy())
            self._time[i] = r.data.time

    def reset(self, env_ids=None, qpos=None, qvel=None, mocap_pos=None) -> None:
        ids = self._env_ids(env_ids)
        for k, i in enumerate(ids):
            r = self.robots[i]
            r.reset()
            if mocap_pos is not None:
                r.data.mocap_pos[:] = np.asarray(mocap_pos[k]).reshape(-1, 3)
            s = r.set_state(
                r.data.qpos.copy() if qpos is None else np.asarray(qpos[k], dtype=float),
                None if qvel is None else np.asarray(qvel[k], dtype=float),
            )
            self._q[i], self._dq[i] = s.q, s.dq
            self.ctrl[i, : self.nj] = torch.from_numpy(r.command)
            self._diverged[i] = False
        if self.adapter is not None and len(ids):
            self.adapter.reset(
                self._q[ids], self._dq[ids], env_ids=ids if self.adapter.hist else None
            )
        self._refresh(ids)

    def set_params(self, name, values, env_ids=None) -> None:
        ids = self._env_ids(env_ids)
        vals = np.asarray(values, dtype=float).reshape(len(ids), *param_shape(self.model, name))
        for k, i in enumerate(ids):
            _write_param(self.robots[i].model, name, vals[k])

    def get_params(self, name: str) -> torch.Tensor:
        param_shape(self.model, name)
        return torch.from_numpy(np.stack([_read_param(r.model, name) for r in self.robots]))

    @property
    def tracking_error(self) -> float:
        """Mean |q_true(t+1) - desired(t)| (rad) over measured joints and steps so far."""
        return self.error_sum / max(self.error_steps, 1)


def policy_body(policy_dir, contract: dict) -> tuple[str, int]:
    """(body reference, seed) of the body an exported policy was trained on, as
    `RobotConfig(body=..., body_seed=...)` takes it: (class, seed) for a generated body,
    else (the export's bundled body.xml, 0) for a body loaded from a robot file."""
    source = contract["body"]["source"]
    found = body_ref.generated_body(source)
    if found is not None:
        return found
    path = Path(policy_dir) / contract["body"]["model"]
    if not path.is_file():
        raise ValueError(f"{policy_dir}: body {source!r} is not generated and {path} is missing")
    return str(path), 0


def policy_setup(policy_dir):
    """(exported policy, task name, task config without randomisation, Embodiment)."""
    from xembody.models.exported import ExportedPolicy
    from xembody.sim import tasks

    policy = ExportedPolicy.load(policy_dir)
    c = policy.contract
    emb = body_ref.resolve_body(*policy_body(policy_dir, c))
    cfg = tasks.nominal(tasks.config_from_dict(c["task"], c["task_cfg"]))
    return policy, c["task"], cfg, emb


def closed_loop(policy_dir, robot_cfg: RobotConfig, *, adapter=None, predict: bool = False,
                num_envs: int = 8, episodes: int = 1, seed: int = 0) -> dict:  # fmt: skip
    """Run the exported policy on N robots of `robot_cfg` (each env its own robot, seeds
    seed+i; one `PolicyController` each) for `episodes` episode lengths. Returns the joint
    tracking error (rad), the success rate and the task's metrics averaged over finished
    episodes."""
    policy, task_name, cfg, emb = policy_setup(policy_dir)
    env, controllers = robot_side(policy, task_name, cfg, emb, robot_cfg, num_envs=num_envs,
                                  seed=seed, adapter=adapter, predict=predict)  # fmt: skip
    task = env.task
    env.reset()
    _restart(controllers, task, range(num_envs))
    actions = np.zeros((num_envs, policy.num_actions), dtype=np.float32)
    desired = np.zeros((num_envs, env.sim.nj))
    finished: dict[str, list] = {}
    for _ in range(env.max_episode_length * episodes):
        for i, c in enumerate(controllers):
            desired[i] = c.step(robot_reading(env.sim, i), task_command(task, i))
            actions[i] = c.action
        env.sim.desired = desired
        _, _, _, extras = env.step(torch.from_numpy(actions))
        done = extras.get("finished", {})
        if "env_ids" in done:
            _restart(controllers, task, done["env_ids"].tolist())
        for k, v in done.items():
            if k != "env_ids":
                finished.setdefault(k, []).extend(v.float().tolist())
    rs = env.sim
    out = {"tracking_error_rad": rs.tracking_error, "steps": rs.error_steps,
           "episodes": len(finished.get("success", [])),
           "saturated_fraction": rs.sat_steps / max(rs.error_steps, 1),
           "error_sum_saturated": rs.sat_error_sum, "error_sum": rs.error_sum}  # fmt: skip
    for k, v in finished.items():
        out[k] = float(np.mean(v))
    return out


def robot_side(policy, task_name: str, cfg, emb, robot_cfg: RobotConfig, *, num_envs: int,
               seed: int = 0, adapter=None, predict: bool = False):  # fmt: skip
    """(env, controllers): the task's env stepping N robots of `robot_cfg` (a `RobotSim`),
    and one `PolicyController` of `policy` per robot, as `closed_loop` runs them. Each
    period: `env.sim.desired` = the controllers' targets, then `env.step(actions)`."""
    from xembody.real.controller import PolicyController
    from xembody.sim import tasks

    env = tasks.make_env(task_name, emb, num_envs, cfg=cfg, seed=seed, num_threads=1)
    task = env.task
    model = env.sim.model
    env.sim.close()
    robot_cfg = dataclasses.replace(robot_cfg, control_dt=1.0 / cfg.control_hz)  # a copy
    robots = [robot_cfg.make(seed=robot_cfg.seed, model=model, suspended=False)
              for _ in range(num_envs)]  # fmt: skip
    if not isinstance(robots[0], SimRobot):
        raise ValueError(
            f"closed loop on {robot_cfg.describe()}: it steps robots in the task's scene, "
            "so it needs a simulated robot (a SimRobot), not hardware"
        )
    if adapter is not None:
        adapter.set_limits(*target_limits(emb))
    env.sim = RobotSim(robots, adapter, measure=task.ctrl_index.tolist(), predict=predict)
    task.bind(env.sim, env.rng)
    controllers = [PolicyController(policy, emb, control_hz=cfg.control_hz)
                   for _ in range(num_envs)]  # fmt: skip
    if controllers[0].twist_output:
        raise ValueError(f"{task_name} policy: closed_loop drives joint targets, not a body twist")
    return env, controllers


def _restart(controllers, task, env_ids) -> None:
    """New episodes: the controllers start over (their gait clock at the task's phase)."""
    phase = getattr(task, "phase", None)
    for i in env_ids:
        controllers[i].reset(float(phase[i]) if phase is not None else 0.0)


def robot_reading(sim: RobotSim, i: int) -> RobotState:
    """What robot `i`'s driver reports, as a `RobotState`: its joint readings (or the
    adapter's prediction, with `predict`), IMU from its sensors and, for a floating base,
    odometry from the free joint (velocities in the base frame)."""
    r = sim.robots[i]
    m, qpos, qvel = sim.model, sim.qpos[i].numpy(), sim.qvel[i].numpy()
    q, dq = sim._obs[0][i].copy(), sim._obs[1][i].copy()
    s = RobotState(float(sim.time[i]), r.joint_names, q, dq, np.zeros(len(q)))
    sens = sim.sensordata[i].numpy()
    for name in ("imu_quat", "imu_gyro"):
        k = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, name)
        if k >= 0:
            a, d = m.sensor_adr[k], m.sensor_dim[k]
            setattr(s, name, sens[a : a + d].copy())
    free = np.flatnonzero(m.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
    if len(free):
        qa, da = m.jnt_qposadr[free[0]], m.jnt_dofadr[free[0]]
        s.base_pos, s.base_quat = qpos[qa : qa + 3].copy(), qpos[qa + 3 : qa + 7].copy()
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, s.base_quat)
        s.base_lin_vel = rot.reshape(3, 3).T @ qvel[da : da + 3]
        s.base_ang_vel = qvel[da + 3 : da + 6].copy()
    return s


def task_command(task, i: int) -> Command:
    """The operator's command for env `i` of `task`: its target pose, goal and range scan,
    or velocity command."""
    c = Command()
    if task.name == "reach":
        c.target_pos, c.target_quat = task.target_pos[i].numpy(), task.target_quat[i].numpy()
    elif task.name == "navigate":
        c.goal, c.ranges = task.goal[i].numpy(), task.ranges()[i].numpy()
    elif hasattr(task, "commands"):
        c.twist = tuple(task.commands[i].tolist())
    return c


def replay_tracking(robot_cfg: RobotConfig, targets: np.ndarray, adapter=None) -> float:
    """Open-loop case: send the target sequence (T, nj) to a robot of `robot_cfg` from its
    home pose (through `adapter` when given); mean abs(q_true(t+1) - target(t)) in rad."""
    robot = robot_cfg.make()
    s = robot.reset()
    if adapter is not None:
        adapter.set_limits(*target_limits(robot.embodiment))
        adapter.reset(s.q, s.dq)
    err = []
    for a in targets:
        robot.send(adapter(s.q, s.dq, a) if adapter is not None else a)
        s = robot.step()
        err.append(np.abs(robot.data.qpos[robot.qadr] - a).mean())
    return float(np.mean(err))


@dataclass(kw_only=True)
class GapConfig:
    """What `gap_study` compares (the options of `xembody dynamics gap`)."""

    policy: str = help_field("", "export folder (xembody export)")
    data: str = help_field("", "dataset collected on the robot, of the policy's body")
    nominal_data: str | None = help_field(
        None, "nominal-sim dataset: reference model (None: collected now, --minutes of it)"
    )
    minutes: float = help_field(5.0, "robot data used (and nominal data)")
    model: str = help_field("jointwise", "dynamics model kind: jointwise or mlp")
    num_envs: int = help_field(8, "robots in closed loop")
    episodes: int = help_field(2, "episode lengths per env")
    test: str | None = help_field(None, "held-out session of the robot: open-loop replay too")
    replay_steps: int = help_field(500, "periods replayed")
    predict: bool = help_field(False, "feed the policy predicted readings")
    robot: RobotConfig | None = help_field(None, "robot of the closed loop (None: the data's)")
    allow_other_robot: bool = help_field(False, "allow `robot` to differ from the data's robot")
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)

    def __post_init__(self) -> None:
        for name in ("policy", "data"):
            if not getattr(self, name):
                raise ValueError(f"{name}={getattr(self, name)!r}, expected a path")
        for name in ("minutes", "num_envs", "episodes", "replay_steps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")


# the adapters `gap_study` compares: name -> what it is. The extrapolation of the policy's
# targets (`AdaptConfig.extrapolate`) is the adapter's latency compensation and lead.
ADAPTERS = {
    "nominal": "the nominal model as robot model and reference: latency compensation and "
    "lead from the extrapolation only, no robot data",
    "learned": "the model fit on the robot's data, nominal reference: the adapter as deployed",
    "learned_no_extrapolation": "as learned, with extrapolate 0: latency compensation off",
}


def gap_robot(cfg: GapConfig, meta: dict, emb_name: str) -> tuple[RobotConfig, str, str]:
    """The robot the closed loop runs on: (config, "dataset" or "given", note). Refuses a
    given robot that differs from the data's unless `cfg.allow_other_robot`."""
    data_robot, note = dataset_robot(meta)
    name = data_robot.embodiment().name
    if name != emb_name or data_robot.robot_class() is SimRobot:
        raise ValueError(
            f"data {cfg.data}: expected data of a robot of {emb_name} (not the nominal "
            f"simulator), got {data_robot.describe()}"
        )
    if cfg.robot is None:
        return data_robot, "dataset", note
    if cfg.robot.identity()["hash"] != data_robot.identity()["hash"] and not cfg.allow_other_robot:
        raise ValueError(
            f"--robot {cfg.robot.describe()} is not the robot the data came from, "
            f"{data_robot.describe()}; pass --allow-other-robot if testing on another robot "
            "is meant"
        )
    if cfg.robot.embodiment().name != emb_name:
        raise ValueError(f"--robot {cfg.robot.describe()}: the policy's body is {emb_name}")
    return cfg.robot, "given", note


def nominal_episodes(cfg: GapConfig, robot_cfg: RobotConfig, meta: dict) -> tuple[list, str]:
    """Nominal-simulator episodes for the reference model: `cfg.nominal_data` (checked: the
    nominal robot of the same body), else `cfg.minutes` collected now with the data's
    collection settings. Returns (episodes, where they came from)."""
    import tempfile

    from xembody.models.dynamics import load_frames
    from xembody.real.collect import CollectConfig, collect

    nominal = robot_cfg.nominal()
    if cfg.nominal_data:
        episodes, nmeta = load_frames(cfg.nominal_data, cfg.minutes)
        theirs, _ = dataset_robot(nmeta)
        if theirs.identity()["hash"] != nominal.identity()["hash"]:
            raise ValueError(
                f"--nominal-data {cfg.nominal_data}: recorded on {theirs.describe()}, "
                f"expected the nominal robot {nominal.describe()}"
            )
        return episodes, str(cfg.nominal_data)
    settings = {**meta.get("collect", {}), "minutes": cfg.minutes}
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    with tempfile.TemporaryDirectory() as tmp:
        collect(nominal, CollectConfig(**settings), f"{tmp}/nominal.zarr")
        episodes, _ = load_frames(f"{tmp}/nominal.zarr")
    return episodes, f"collected now ({cfg.minutes:g} min, the data's collection settings)"


def gap_study(cfg: GapConfig) -> dict:
    """The policy's closed-loop gap between the nominal simulator and the robot, and how
    much of it each adapter of `ADAPTERS` removes: gap removed = (robot - adapted) /
    (robot - sim); "model_contribution" = learned - nominal (points of the gap)."""
    from xembody.models.dynamics import fit, load_frames
    from xembody.real.adapt import ActionAdapter

    _, _, _, emb = policy_setup(cfg.policy)
    episodes, meta = load_frames(cfg.data, cfg.minutes)
    robot_cfg, source, note = gap_robot(cfg, meta, emb.name)
    model = fit(cfg.model, emb, episodes, cfg.dynamics)
    nominal_eps, nominal_from = nominal_episodes(cfg, robot_cfg, meta)
    nominal_model = fit(cfg.model, emb, nominal_eps, cfg.dynamics)
    no_lead = dataclasses.replace(cfg.adapt, extrapolate=0.0)
    make = {
        "nominal": lambda: ActionAdapter(nominal_model, nominal_model, cfg.adapt),
        "learned": lambda: ActionAdapter(model, nominal_model, cfg.adapt),
        "learned_no_extrapolation": lambda: ActionAdapter(model, nominal_model, no_lead),
    }
    nominal = robot_cfg.nominal()
    run = dict(num_envs=cfg.num_envs, episodes=cfg.episodes, seed=0)
    sim = closed_loop(cfg.policy, nominal, **run)
    raw = closed_loop(cfg.policy, robot_cfg, **run)
    e_sim, e_raw = sim["tracking_error_rad"], raw["tracking_error_rad"]
    removed = lambda e: (e_raw - e) / (e_raw - e_sim) if e_raw != e_sim else 0.0  # noqa: E731
    adapted, delays = {}, {}
    for name in ADAPTERS:
        adapter = make[name]()
        r = closed_loop(cfg.policy, robot_cfg, adapter=adapter, predict=cfg.predict, **run)
        adapted[name] = {**r, "gap_removed": removed(r["tracking_error_rad"])}
        delays[name] = adapter.delay
    replay = {}
    if cfg.test:  # open loop: the held-out session's targets, same robot as the closed loop
        targets = load_frames(cfg.test)[0][0]["target"][: cfg.replay_steps].astype(float)
        replay = {"steps": len(targets), "sim": replay_tracking(nominal, targets),
                  "proxy_raw": replay_tracking(robot_cfg, targets)}  # fmt: skip
        gap = replay["proxy_raw"] - replay["sim"]
        for name in ADAPTERS:
            e = replay_tracking(robot_cfg, targets, make[name]())
            share = (replay["proxy_raw"] - e) / gap if gap else 0.0
            replay[name] = {"tracking_error_rad": e, "gap_removed": share}
    learned = adapted["learned"]
    return {
        "policy": str(cfg.policy), "body": emb.name, "data": str(cfg.data),
        "robot": robot_cfg.describe(), "robot_source": source, "note": note,
        "minutes": cfg.minutes, "train_frames": model.train_frames, "model": cfg.model,
        "nominal_data": nominal_from, "estimated_delay": delays["learned"],
        "estimated_delays": delays, "predict": cfg.predict, "adapters": ADAPTERS,
        "dynamics": dataclasses.asdict(cfg.dynamics), "adapt": dataclasses.asdict(cfg.adapt),
        "proxy": dataclasses.asdict(robot_cfg.proxy) if robot_cfg.proxy else None,
        "sim": sim, "proxy_raw": raw, "adapted": adapted,
        "tracking_gap_rad": e_raw - e_sim,
        "gap_removed": {name: r["gap_removed"] for name, r in adapted.items()},
        "model_contribution": learned["gap_removed"] - adapted["nominal"]["gap_removed"],
        "replay": replay,
    }  # fmt: skip


# --- which effect makes the gap -----------------------------------------------------------
EFFECTS = {  # effect name -> the ProxyConfig fields that switch it on
    "latency": ("latency_steps",),
    "coulomb": ("coulomb_frac",),
    "viscous": ("viscous_ratio",),
    "backlash": ("backlash",),
    "torque-speed": ("torque_scale", "speed_scale"),
    "sensor": ("sensor_noise", "sensor_bias", "velocity_noise"),
    "payload": ("payload_kg",),
}


def effects_study(policy_dir, robot_cfg: RobotConfig, *, num_envs: int = 8,
                  episodes: int = 2) -> dict:  # fmt: skip
    """The policy's closed-loop tracking gap on `robot_cfg`'s robot, split by proxy effect:
    the nominal robot with only that effect switched on ("only"), and the full robot with
    only that effect switched off ("without"). Each row's share is of the full gap: (only -
    sim) and (full - without) over (full - sim). Also the share of the gap accumulated in
    periods that end with a measured joint at its actuator force limit (there a change of
    position target cannot add torque).

    A robot class of your own: a `ProxyRobot` subclass gets a row "robot class" (the class
    with every `ProxyConfig` effect off), its "only" rows run on the plain `ProxyRobot` and
    its "without" rows keep the class's own effects; other classes have no `ProxyConfig`
    to split, so only the whole gap and its saturated share are reported."""
    from xembody.real.proxy import ProxyConfig

    if robot_cfg.robot_class() is SimRobot:
        raise ValueError(f"effects: {robot_cfg.describe()} is the nominal simulator: no effects")
    full_p, off = robot_cfg.proxy, ProxyConfig.nominal()

    def run(robot):
        return closed_loop(policy_dir, robot, num_envs=num_envs, episodes=episodes, seed=0)

    with_proxy = lambda p: dataclasses.replace(robot_cfg, proxy=p)  # noqa: E731
    sim, full = run(robot_cfg.nominal()), run(robot_cfg)
    e_sim, e_full = sim["tracking_error_rad"], full["tracking_error_rad"]
    share = lambda x: x / (e_full - e_sim) if e_full != e_sim else 0.0  # noqa: E731
    rows = []
    if robot_cfg.robot and full_p is not None:  # the class's own effects alone
        only = run(with_proxy(off))["tracking_error_rad"]
        rows.append({"effect": "robot class", "only_rad": only, "without_rad": None,
                     "only_share": share(only - e_sim), "without_share": None})  # fmt: skip
    for name, fields in EFFECTS.items() if full_p is not None else ():
        on = {f: getattr(full_p, f) for f in fields}
        if all(getattr(off, f) == v for f, v in on.items()):
            continue  # the effect is off in this proxy
        only_cfg = with_proxy(off.replace(**on))
        if robot_cfg.robot:  # the class's own effects cannot be switched off: "only" is
            only_cfg = dataclasses.replace(only_cfg, robot="", options={})  # on ProxyRobot
        only = run(only_cfg)["tracking_error_rad"]
        without = run(with_proxy(full_p.replace(**{f: getattr(off, f) for f in fields})))
        without = without["tracking_error_rad"]
        rows.append({"effect": name, "only_rad": only, "without_rad": without,
                     "only_share": share(only - e_sim),
                     "without_share": share(e_full - without)})  # fmt: skip
    sat_gap = full["error_sum_saturated"] - sim["error_sum_saturated"]
    total_gap = full["error_sum"] - sim["error_sum"]
    return {
        "policy": str(policy_dir), "body": robot_cfg.embodiment().name,
        "robot": robot_cfg.describe(),
        "proxy": dataclasses.asdict(full_p) if full_p is not None else None,
        "num_envs": num_envs, "episodes": episodes,
        "sim_rad": e_sim, "proxy_rad": e_full, "gap_rad": e_full - e_sim, "effects": rows,
        "saturated_fraction": {"sim": sim["saturated_fraction"],
                               "proxy": full["saturated_fraction"]},
        "gap_share_saturated": sat_gap / total_gap if total_gap else 0.0,
        "success": {"sim": sim.get("success"), "proxy": full.get("success")},
    }  # fmt: skip
