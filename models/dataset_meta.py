"""The dataset meta schema: what every writer stores in the `meta` of `Dataset.create`
(`xembody.models.dataset`) and how every reader gets it back.

The meta is free-form JSON plus the keys every writer stores through `write_meta` and every
reader gets through `read_meta`:

    body        the recorded body: its Embodiment fields (dataclasses.asdict, with "mjcf"),
                or at least {"name", "source"}; `dataset_body` turns it back into the
                Embodiment (`xembody.sim.bodies.reference.resolve_body`)
    obs_layout  (when frames hold policy observations) one {"name", ...} per observation
                term, in order (the export contract's layout where the writer has it)
    robot_id    (when frames come from one robot: `xembody collect`) the robot's identity,
                `robot_identity`: {"class": "module:Class", "config": its settings (JSON),
                "hash": 10 hex digits of both}; two datasets of the same hash come from the
                same robot under the same dynamics settings

Older datasets stored "body" as a bare name ("arm_s0"; collected ones with the body in
"robot") and the observation term names as "obs_terms"; `read_meta` reads both. Collected
datasets from before "robot_id" get one inferred from their "robot" entry (the built-in
robots were the only ones then), marked "legacy": true.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xembody.sim.bodies.embodiment import Embodiment


def robot_identity(class_path: str, config: dict[str, Any]) -> dict[str, Any]:
    """A robot's identity: its class ("module:Class"), its settings (JSON-safe) and a short
    hash of both (sha256 of the sorted JSON, first 10 hex digits)."""
    config = json.loads(json.dumps(config, default=float))
    blob = json.dumps({"class": class_path, "config": config}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return {"class": class_path, "config": config, "hash": digest}


def write_meta(
    body: Embodiment,
    *,
    obs_layout: list[dict[str, Any]] | None = None,
    robot_id: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The meta of a new dataset recorded on `body`: the body whole (JSON-safe), the
    observation layout when frames hold observations, the robot's identity
    (`robot_identity`) when frames come from one robot, and the writer's own `extra` keys."""
    meta: dict[str, Any] = {"body": json.loads(json.dumps(dataclasses.asdict(body), default=float))}
    if obs_layout is not None:
        meta["obs_layout"] = [dict(t) for t in obs_layout]
    if robot_id is not None:
        if set(robot_id) != {"class", "config", "hash"}:
            raise ValueError(f"robot_id keys {sorted(robot_id)}, expected class, config, hash")
        meta["robot_id"] = dict(robot_id)
    return {**meta, **extra}


def read_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A dataset's meta in the current schema (a copy; see the module docstring): "body"
    always a dict, "obs_terms" of older datasets read as "obs_layout"."""
    out = dict(meta)
    body = out.get("body")
    if isinstance(body, str):
        body = {"name": body}
        robot = out.get("robot")
        if isinstance(robot, dict) and robot.get("body"):  # collected: the robot's body
            from xembody.sim.bodies.reference import generator_source
            from xembody.sim.bodies.registry import names

            ref = str(robot["body"])
            seed = int(robot.get("body_seed", 0))
            body["source"] = generator_source(ref, seed) if ref in names() else ref
        out["body"] = body
    if "obs_layout" not in out and "obs_terms" in out:
        out["obs_layout"] = [{"name": n} for n in out.pop("obs_terms")]
    robot = out.get("robot")
    if "robot_id" not in out and isinstance(robot, dict) and robot.get("body"):
        config = {k: v for k, v in robot.items() if k != "robot"}
        config.setdefault("options", {})
        builtin = "proxy:ProxyRobot" if robot.get("proxy") is not None else "robot:SimRobot"
        out["robot_id"] = {**robot_identity(f"xembody.real.{builtin}", config), "legacy": True}
    return out


def dataset_body(meta: dict[str, Any]) -> Embodiment:
    """The body a dataset was recorded on, from its meta (any schema `read_meta` reads)."""
    from xembody.sim.bodies.reference import resolve_body

    body = read_meta(meta).get("body")
    if body is None:
        raise ValueError("dataset meta has no 'body'")
    return resolve_body(body)
