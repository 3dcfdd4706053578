"""Export a trained policy for deployment: ONNX, TorchScript and a JSON sidecar.

`export_policy(checkpoint, out_dir)` rebuilds the run's env (one env) and rsl-rl runner,
loads the checkpoint and writes

    policy.onnx   input "obs" (B, obs_dim) float32 -> output "actions" (B, num_actions)
    policy.pt     the same network, TorchScript (`forward(obs) -> actions`)
    policy.json   the policy's contract, format "xembody-policy/2" (`policy_contract`)
    body.xml      the body's MJCF the policy was trained on (`bundle_body`; with
                  body.xml.json, its joint/sensor facts, and assets/ for mesh files)

Both networks return the deterministic action (the Gaussian mean) before clipping and
scaling; the observation normalisation is inside them. `xembody.models.exported` loads the
folder on the robot side without rsl-rl or MuJoCo.

Sidecar keys: task, body {name, class, source, floating_base, joint_names, default_pose,
params, joints: [{name, kind, range, default, kp, kd, effort_limit, velocity_limit}],
sensors, model, facts, assets}, conventions (`conventions`: units, quaternion order,
frames, IMU, base, gait clock, end effector, joint equalities), control_hz, task_cfg
(the task's settings less randomisation), obs_dim, num_actions, observation {group,
dtype, terms: [{name, start, size, units, frame, doc, formula}]}, action {kind, mapping,
formula, action_scale, action_clip, names, doc}, joint_names and default_pose (the joints
the policy drives, in action order), files, sha256, io, checkpoint {file, run,
iteration}, xembody (version).

Action mapping: a task that keeps `Task.apply_actions` gets mapping "joint_position_offset"
(or "joint_velocity_offset" for velocity-actuated bodies): target = default_pose +
action_scale * clip(action, +-action_clip). A task that overrides `apply_actions` names its
mapping in a class attribute `action_mapping` (e.g. "body_twist") and may name its action
entries in `action_names`; without them the sidecar says "custom" and carries the
method's docstring.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import xembody
from xembody.models.exported import (
    FORMAT,
    MODEL_FACTS_FILE,
    MODEL_FILE,
    ONNX_FILE,
    SIDECAR_FILE,
    TORCHSCRIPT_FILE,
    file_sha256,
)
from xembody.sim.bodies.embodiment import Embodiment, asset_files
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import Task

if TYPE_CHECKING:
    from rsl_rl.runners import OnPolicyRunner

    from xembody.models.run import Run

OBS_GROUP = "policy"
ASSET_DIR = "assets"

# How each observation term is computed from a robot's readings: what a runtime without
# xembody implements (tests/foreign_runtime.py does, from this text and the bundled model).
# Keys "<task>.<term>" first, then "<term>". Symbols: q, dq (joint readings by name),
# R(quat) the rotation matrix of a w,x,y,z quaternion, yaw(quat) its heading.
TERM_FORMULAS = {
    "joint_pos": "q[j] - default_pose[j] for j in joint_names (rad)",
    "joint_vel": "dq[j] for j in joint_names (rad/s)",
    "last_action": "the network's output at the previous control step clipped to "
    "[-action_clip, action_clip] (as the env fed it in training), before scaling; zeros at "
    "the first step",
    "velocity.base_ang_vel": "IMU gyro: angular velocity of the IMU site frame, in that frame",
    "velocity.base_lin_vel": "linear velocity of the IMU site in the IMU site frame "
    "(odometry twist, base frame, on a robot whose IMU is aligned with the base)",
    "projected_gravity": "R(imu_quat)^T (0, 0, -1): the unit gravity direction in the IMU "
    "site frame; imu_quat rotates IMU-frame vectors into the world frame",
    "velocity_command": "(vx, vy, wz) commanded: m/s forward, m/s left, rad/s yaw rate "
    "(base frame)",
    "gait_clock": "(sin(2 pi phase), cos(2 pi phase)); phase: conventions.gait_clock",
    "ee_pos": "position of the end-effector site (conventions.end_effector) in the world "
    "frame of the bundled model, by forward kinematics at the measured joint angles",
    "target_pos": "the commanded end-effector position, world frame of the bundled model",
    "pos_error": "target_pos - ee_pos",
    "rot_error": "rotation vector (axis x angle) of dq = target_quat * conj(ee_quat), dq "
    "negated first if its w < 0; ee_quat: the end-effector site's orientation in the world "
    "frame (MuJoCo site_xmat as a quaternion)",
    "jac_pos_error": "10 * cross(axis_j, ee_pos - anchor_j) . pos_error per policy joint "
    "(axis_j, anchor_j: the joint's world axis and anchor, MuJoCo xaxis and xanchor)",
    "jac_rot_error": "axis_j . rot_error per policy joint",
    "ik_step": "clip(J^T (J J^T + ik_damping^2 I)^-1 e, -1, 1) with J (6, n) = rows "
    "cross(axis_j, ee_pos - anchor_j) and ik_rot_weight * axis_j, e = (pos_error, "
    "ik_rot_weight * rot_error); ik_damping, ik_rot_weight from task_cfg",
    "gravity_sag": "gravity's generalized force on each policy joint's dof at the measured "
    "angles with zero velocity (MuJoCo mj_rne, no acceleration), divided by the kp of the "
    "actuator driving that joint",
    "goal_distance": "|g| with g = R(-yaw) (goal_xy - base_xy), the goal in the base-yaw "
    "frame; base_xy and yaw from the odometry pose",
    "goal_direction": "g / max(|g|, 1e-6)",
    "navigate.base_lin_vel": "(vx, vy) in the base-yaw frame: R(-yaw) (R(base_quat) "
    "v_body)[:2], v_body the odometry twist's linear velocity (base frame)",
    "navigate.base_ang_vel": "wz: the odometry twist's angular velocity z (base frame)",
    "ranges": "num_rays horizontal ranges (m) from the base at ring_height, ray i at 360 i "
    "/ num_rays deg CCW from forward: min(r, ray_range), and ray_range where r < 0 or "
    "infinite (no hit); NaN is an error",
}


def obs_layout(env: BodyEnv) -> list[dict[str, Any]]:
    """Where each of the task's observation terms sits in the "policy" vector."""
    layout, start = [], 0
    for term in env.obs_terms:
        size = int(term.fn(env.task).shape[-1])
        layout.append(
            {
                "name": term.name,
                "start": start,
                "size": size,
                "units": term.units,
                "frame": term.frame,
                "doc": term.doc,
                "formula": TERM_FORMULAS.get(
                    f"{env.task.name}.{term.name}", TERM_FORMULAS.get(term.name)
                ),
            }
        )
        start += size
    obs_dim = int(env.get_observations()[OBS_GROUP].shape[-1])
    if start != obs_dim:
        raise ValueError(
            f"task {env.task.name!r}: observation terms add up to {start} entries but the "
            f"{OBS_GROUP!r} group has {obs_dim}"
        )
    return layout


def action_contract(task: Task) -> dict[str, Any]:
    """What the policy's action vector means for `task` (see the module docstring)."""
    cfg, emb = task.cfg, task.emb
    own = type(task).apply_actions is not Task.apply_actions
    doc = " ".join((type(task).apply_actions.__doc__ or "").split()) if own else None
    if own:
        mapping = getattr(task, "action_mapping", None) or "custom"
        formula = f"{type(task).__name__}.apply_actions: {doc}" if doc else "task-defined"
    else:
        mapping = f"{emb.action.kind}_offset"
        formula = (
            "target[i] = default_pose[i] + action_scale * clip(action[i], -action_clip, "
            f"action_clip), a {emb.action.kind.removeprefix('joint_')} target for joint_names[i]"
        )
    names = getattr(task, "action_names", None)
    if names is None and not own:
        names = task.joint_names
    return {
        "kind": emb.action.kind,
        "mapping": mapping,
        "formula": formula,
        "action_scale": cfg.action_scale,
        "action_clip": cfg.action_clip,
        "names": list(names) if names is not None else None,
        "doc": doc,
    }


def policy_contract(
    env: BodyEnv, *, checkpoint: Path | None = None, iteration: int | None = None
) -> dict[str, Any]:
    """The sidecar for a policy trained on `env`'s task and body (any task)."""
    task = env.task
    layout = obs_layout(env)
    default = dict(zip(task.emb.joint_names, task.emb.default_pose.tolist(), strict=True))
    return {
        "format": FORMAT,
        "task": task.name,
        "body": {
            "name": task.emb.name,
            "class": task.emb.body_class,
            "source": task.emb.source,
            "floating_base": task.emb.floating_base,
            "joint_names": list(task.emb.joint_names),
            "default_pose": task.emb.default_pose.tolist(),
            "params": task.emb.params,
            "joints": [_joint_facts(j) for j in task.emb.joints],
            "sensors": dataclasses.asdict(task.emb.sensors),
            "model": MODEL_FILE,
            "facts": MODEL_FACTS_FILE,
            "assets": [],
        },
        "conventions": conventions(task, layout),
        "control_hz": task.cfg.control_hz,
        "task_cfg": {k: v for k, v in dataclasses.asdict(task.cfg).items() if k != "randomization"},
        "obs_dim": sum(t["size"] for t in layout),
        "num_actions": task.num_actions,
        "observation": {"group": OBS_GROUP, "dtype": "float32", "terms": layout},
        "action": action_contract(task),
        "joint_names": list(task.joint_names),
        "default_pose": [default[n] for n in task.joint_names],
        "files": {
            "onnx": ONNX_FILE,
            "torchscript": TORCHSCRIPT_FILE,
            "model": MODEL_FILE,
            "facts": MODEL_FACTS_FILE,
        },
        "sha256": {},
        "io": {
            "input": "obs",
            "output": "actions",
            "dtype": "float32",
            "shape": "(batch, obs_dim) -> (batch, num_actions)",
        },
        "checkpoint": {
            "file": checkpoint.name if checkpoint else None,
            "run": str(checkpoint.parent) if checkpoint else None,
            "iteration": iteration,
        },
        "xembody": xembody.__version__,
    }


def _joint_facts(j) -> dict[str, Any]:
    """A joint's limits and gains, JSON-safe (an unlimited velocity is null)."""
    out = dataclasses.asdict(j)
    out["range"] = list(j.range)
    if not math.isfinite(j.velocity_limit):
        out["velocity_limit"] = None
    return out


def conventions(task: Task, layout: list[dict[str, Any]]) -> dict[str, Any]:
    """What a runtime needs besides the term list to rebuild the observation."""
    emb, cfg = task.emb, task.cfg
    model = emb.compile()
    names = {t["name"] for t in layout}
    out: dict[str, Any] = {
        "units": "SI: m, s, rad, rad/s, N, N m; angles in rad",
        "quaternion": "w, x, y, z (scalar first, as MuJoCo; ROS messages store x, y, z, w). "
        "A quaternion q of frame F rotates vectors from F into the world: v_world = "
        "R(q) v_F",
        "world_frame": f"the world body of {MODEL_FILE}: z up, gravity (0, 0, -9.81) m/s^2; "
        "a floating base's odometry frame is this world frame",
        "frames": {
            "joint": "per joint, in joint_names order",
            "action": "per action entry, in action.names order",
            "task": "no spatial frame",
            "world": f"the world frame of {MODEL_FILE}",
            "body": "the IMU site frame (conventions.imu)",
            "base_yaw": "the base's heading frame: world axes turned by the base's yaw "
            "(x forward, y left, z up)",
        },
        "joint_equalities": f"joints that a joint equality of {MODEL_FILE} ties to another "
        "(a mirrored finger) follow it by the equality's polynomial; a robot reports only "
        "the leader",
        "gait_clock": None,
        "imu": None,
        "base": None,
        "end_effector": None,
    }
    site_frame = lambda name: {  # noqa: E731
        "site": name,
        "body": model.body(model.site_bodyid[model.site(name).id]).name,
        "pos_in_body": model.site(name).pos.tolist(),
        "quat_in_body": model.site(name).quat.tolist(),
    }
    if emb.sensors.imu_site:
        out["imu"] = {
            **site_frame(emb.sensors.imu_site),
            "orientation": "imu_quat: the IMU site frame's orientation in the world, w,x,y,z",
            "angular_velocity": "imu_gyro: rad/s in the IMU site frame",
        }
    if emb.sensors.base_body and emb.floating_base:
        out["base"] = {
            "body": emb.sensors.base_body,
            "odometry": "pose: the base body frame in the world (odom) frame, w,x,y,z; "
            "twist: linear and angular velocity in the base body frame (nav_msgs/Odometry "
            "child frame)",
        }
    period = float(getattr(cfg, "gait_period", 0.0))
    if "gait_clock" in names and period > 0:
        dt = 1.0 / cfg.control_hz
        out["gait_clock"] = {
            "period_s": period,
            "control_dt_s": dt,
            "phase_per_step": dt / period,
            "origin": "phase = 0 at the controller's first step after start or reset "
            "(training drew a random phase per episode, so any origin is in distribution)",
            "formula": "observation k (k = 0, 1, ...) uses phase_k = (k * control_dt_s / "
            "period_s) mod 1 and reads (sin(2 pi phase_k), cos(2 pi phase_k)); the phase "
            "advances after each step's observation",
        }
    if emb.sensors.ee_site and task.name == "reach":
        out["end_effector"] = {
            **site_frame(emb.sensors.ee_site),
            "model": MODEL_FILE,
            "pose": "site_xpos and site_xmat of the site after mj_kinematics with the body's "
            "joints at their readings (qpos by joint name; other joints at qpos0)",
        }
    return out


def bundle_body(emb: Embodiment, out_dir: Path) -> list[str]:
    """Write the body's MJCF (`body.xml`, exactly the text the policy was trained on when
    it names no files) and its facts (`body.xml.json`) into `out_dir`; mesh, texture,
    height-field and skin files it names are copied under `assets/` and the MJCF points at
    them relative to itself. Returns the copied files, relative to `out_dir`."""
    out_dir = Path(out_dir)
    emb.write(out_dir / MODEL_FILE)
    spec = emb.spec()
    assets = list(asset_files(spec, spec.modelfiledir or "."))
    if not assets:
        return []
    copied: list[str] = []
    (out_dir / ASSET_DIR).mkdir(exist_ok=True)
    for a, src in assets:
        if not src.is_file():
            raise FileNotFoundError(f"body {emb.name!r}: asset file {src} is missing")
        rel = f"{ASSET_DIR}/{len(copied)}_{src.name}"
        shutil.copyfile(src, out_dir / rel)
        a.file = str((out_dir / rel).resolve())  # to_xml compiles: files must resolve
        copied.append(rel)
    spec.meshdir, spec.texturedir = "", ""
    text = spec.to_xml().replace(f'"{out_dir.resolve()}/', '"')  # relative to body.xml
    (out_dir / MODEL_FILE).write_text(text)
    return copied


def upgrade_export(folder: Path) -> dict[str, Any]:
    """Bring an export folder of an older format (/1) to this one, in place, without the
    checkpoint: the networks stay (their hashes are checked first), the contract is
    rebuilt from the task, task settings and body the old sidecar names (the body made
    again from `body.source`) and must describe the same observation layout, actions and
    joints, and the body's MJCF is bundled. Returns the new sidecar."""
    from xembody.models.exported import body_from_source, read_contract
    from xembody.sim import tasks

    folder = Path(folder)
    old = read_contract(folder)
    if old["format"] == FORMAT:
        return old
    for key, expected in old.get("sha256", {}).items():
        if file_sha256(folder / old["files"][key]) != expected:
            raise ValueError(f"{folder / old['files'][key]}: differs from its sidecar's hash")
    emb = body_from_source(old["body"]["source"])
    cfg = tasks.config_from_dict(old["task"], old["task_cfg"])
    env = tasks.make_env(old["task"], emb, 1, cfg=cfg, randomize=False, num_threads=1)
    try:
        new = policy_contract(env)
    finally:
        env.close()
    layout = lambda c: [(t["name"], t["start"], t["size"]) for t in c["observation"]["terms"]]  # noqa: E731
    same = {
        "observation layout": (layout(old), layout(new)),
        "action": ({k: old["action"][k] for k in ("mapping", "action_scale", "action_clip")},
                   {k: new["action"][k] for k in ("mapping", "action_scale", "action_clip")}),
        "joint_names": (old["joint_names"], new["joint_names"]),
        "body joints": (old["body"]["joint_names"], new["body"]["joint_names"]),
        "control_hz": (old["control_hz"], new["control_hz"]),
    }  # fmt: skip
    for what, (a, b) in same.items():
        if a != b:
            raise ValueError(f"{folder}: rebuilt contract differs in {what}: {a} (old) vs {b}")
    if not np.allclose(old["default_pose"], new["default_pose"]) or not np.allclose(
        old["body"]["default_pose"], new["body"]["default_pose"]
    ):
        raise ValueError(f"{folder}: the body made again from its source has another default pose")
    new["checkpoint"], new["xembody"] = old["checkpoint"], old["xembody"]
    new["upgraded"] = {"from": old["format"], "by": xembody.__version__}
    new["body"]["assets"] = bundle_body(emb, folder)
    new["sha256"] = {key: file_sha256(folder / name) for key, name in new["files"].items()}
    text = json.dumps(new, indent=2, default=float)
    (folder / SIDECAR_FILE).write_text(text)
    return json.loads(text)


def load_checkpoint(
    checkpoint: Path, num_envs: int = 1, *, randomize: bool = False
) -> tuple[Run, BodyEnv, OnPolicyRunner]:
    """(run, env, runner) with the checkpoint's weights loaded (no logging); unlike
    `models.run.load_runner`, it also makes the run and its env."""
    from xembody.models import run as runs

    run = runs.Run.load(checkpoint)
    env = runs.make_env(run, num_envs, threads=1, randomize=randomize)
    return run, env, runs.load_runner(checkpoint, env)


def export_policy(checkpoint: Path, out_dir: Path) -> dict[str, Any]:
    """Write policy.onnx, policy.pt and policy.json for `checkpoint` (a model_<it>.pt, or a
    run folder: its latest checkpoint) into `out_dir`; returns the sidecar."""
    from xembody.models.run import latest_checkpoint

    checkpoint = latest_checkpoint(Path(checkpoint))
    _, env, runner = load_checkpoint(checkpoint)
    try:
        return export_module(
            runner.get_inference_policy(),
            env,
            out_dir,
            checkpoint=checkpoint,
            iteration=int(runner.current_learning_iteration),
        )
    finally:
        env.close()


def export_module(
    model: torch.nn.Module,
    env: BodyEnv,
    out_dir: Path,
    *,
    checkpoint: Path | None = None,
    iteration: int | None = None,
) -> dict[str, Any]:
    """Export any policy network for `env`'s task and body: `model.as_jit()` and
    `model.as_onnx()` map obs (B, obs_dim) to actions (B, num_actions)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    contract = policy_contract(env, checkpoint=checkpoint, iteration=iteration)
    if getattr(model, "is_recurrent", False):
        raise ValueError(f"{checkpoint}: recurrent policies are not exportable yet")
    contract["body"]["assets"] = bundle_body(env.task.emb, out_dir)
    _write_torchscript(model, out_dir / TORCHSCRIPT_FILE)
    _write_onnx(model, contract["obs_dim"], out_dir / ONNX_FILE)
    contract["sha256"] = {
        key: file_sha256(out_dir / name) for key, name in contract["files"].items()
    }
    text = json.dumps(contract, indent=2, default=float)
    (out_dir / SIDECAR_FILE).write_text(text)
    return json.loads(text)  # exactly what is on disk (tuples as lists)


def _write_torchscript(model: torch.nn.Module, path: Path) -> None:
    module = model.as_jit().to("cpu").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream
        torch.jit.script(module).save(str(path))


def _write_onnx(model: torch.nn.Module, obs_dim: int, path: Path) -> None:
    module = model.as_onnx(verbose=False).to("cpu").eval()
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # "torchvision is not installed" notes
    try:
        _onnx_export(module, obs_dim, path)
    finally:
        registry_log.setLevel(level)


def _onnx_export(module: torch.nn.Module, obs_dim: int, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation notes (pytree)
        if getattr(module, "onnx_via_torchscript", False):
            # A frozen TorchScript base inside (residual policies) or attention layers whose
            # batch size torch.export specialises (the joint-token student): the
            # TorchScript-based exporter keeps the batch dimension dynamic.
            torch.onnx.export(
                torch.jit.script(module),
                (torch.zeros(1, obs_dim),),
                str(path),
                input_names=["obs"],
                output_names=["actions"],
                dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}},
                opset_version=18,
                dynamo=False,
            )
            return
        torch.onnx.export(
            module,
            (torch.zeros(1, obs_dim),),
            str(path),
            input_names=["obs"],
            output_names=["actions"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            opset_version=18,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
