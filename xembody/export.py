"""`xembody export`: a checkpoint -> policy.onnx, policy.pt (TorchScript) and policy.json.

    xembody export --checkpoint runs/reach-arm_s0/<stamp>            # latest checkpoint
    xembody export --checkpoint runs/.../model_300.pt --out deploy/reach

The sidecar (policy.json) is the policy's contract with the robot: observation layout,
joint order and default pose, action mapping, control rate (`xembody.models.export`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from xembody.config import add_arguments, field, from_args


@dataclass(kw_only=True)
class ExportConfig:
    checkpoint: str = field("", "model_<it>.pt, or a run folder (its latest checkpoint)")
    out: str = field("", "output folder (default: <run folder>/export_<iteration>)")

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("checkpoint is empty, expected a model_<it>.pt or a run folder")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained policy to ONNX + TorchScript + sidecar")
    add_arguments(p, ExportConfig)
    p.set_defaults(run=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    export(from_args(ExportConfig, args))
    return 0


def export(cfg: ExportConfig) -> Path:
    """Export; prints what was written and returns the output folder."""
    from xembody.models.export import export_policy
    from xembody.models.run import latest_checkpoint

    checkpoint = latest_checkpoint(cfg.checkpoint)
    out = Path(cfg.out) if cfg.out else checkpoint.parent / f"export_{checkpoint.stem[6:]}"
    contract = export_policy(checkpoint, out)
    action = contract["action"]
    print(
        f"exported {checkpoint} (iteration {contract['checkpoint']['iteration']}): "
        f"task {contract['task']}, body {contract['body']['name']}, "
        f"obs {contract['obs_dim']} -> actions {contract['num_actions']} "
        f"({action['mapping']}, scale {action['action_scale']}, clip {action['action_clip']}) "
        f"at {contract['control_hz']:g} Hz"
    )
    for key, name in (*contract["files"].items(), ("sidecar", "policy.json")):
        path = out / name
        print(f"  {key:<12} {path}  ({path.stat().st_size / 1024:.1f} KiB)")
    return out
