"""Export a trained policy for deployment: ONNX, TorchScript and a JSON sidecar.

`export_policy(checkpoint, out_dir)` rebuilds the run's env (one env) and rsl-rl runner,
loads the checkpoint and writes

    policy.onnx   input "obs" (B, obs_dim) float32 -> output "actions" (B, num_actions)
    policy.pt     the same network, TorchScript (`forward(obs) -> actions`)
    policy.json   the policy's contract, format "xembody-policy/1" (`policy_contract`)

Both networks return the deterministic action (the Gaussian mean) before clipping and
scaling; the observation normalisation is inside them. `xembody.models.exported` loads the
folder on the robot side without rsl-rl or MuJoCo.

Sidecar keys: task, body {name, class, source, floating_base, joint_names, default_pose,
params}, control_hz, task_cfg (the task's settings less randomisation), obs_dim,
num_actions, observation {group, dtype, terms: [{name, start, size, units, frame, doc}]},
action {kind, mapping, formula, action_scale, action_clip, names, doc}, joint_names and
default_pose (the joints the policy drives, in action order), files, sha256, io,
checkpoint {file, run, iteration}, xembody (version).

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
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import xembody
from xembody.models.exported import (
    FORMAT,
    ONNX_FILE,
    SIDECAR_FILE,
    TORCHSCRIPT_FILE,
    file_sha256,
)
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import Task

if TYPE_CHECKING:
    from rsl_rl.runners import OnPolicyRunner

    from xembody.models.run import Run

OBS_GROUP = "policy"


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
        },
        "control_hz": task.cfg.control_hz,
        "task_cfg": {k: v for k, v in dataclasses.asdict(task.cfg).items() if k != "randomization"},
        "obs_dim": sum(t["size"] for t in layout),
        "num_actions": task.num_actions,
        "observation": {"group": OBS_GROUP, "dtype": "float32", "terms": layout},
        "action": action_contract(task),
        "joint_names": list(task.joint_names),
        "default_pose": [default[n] for n in task.joint_names],
        "files": {"onnx": ONNX_FILE, "torchscript": TORCHSCRIPT_FILE},
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


def load_runner(
    checkpoint: Path, num_envs: int = 1, *, randomize: bool = False
) -> tuple[Run, BodyEnv, OnPolicyRunner]:
    """(run, env, runner) with the checkpoint's weights loaded (no logging)."""
    from xembody.models import run as runs

    run = runs.Run.load(checkpoint)
    env = runs.make_env(run, num_envs, threads=1, randomize=randomize)
    return run, env, runs.load_runner(checkpoint, env)


def export_policy(checkpoint: Path, out_dir: Path) -> dict[str, Any]:
    """Write policy.onnx, policy.pt and policy.json for `checkpoint` (a model_<it>.pt, or a
    run folder: its latest checkpoint) into `out_dir`; returns the sidecar."""
    from xembody.models.run import latest_checkpoint

    checkpoint = latest_checkpoint(Path(checkpoint))
    _, env, runner = load_runner(checkpoint)
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
