"""Which body: every stored reference to a body, turned back into its `Embodiment`.

A body is referred to in five ways across the project's files:

- a body class (`"arm"`) plus a seed: the generator samples it (`--body arm --seed 3`);
- a generator source, `"generator:arm(seed=3)"`: what `Embodiment.source` holds for a
  generated body, hence what an export's contract `body.source` says;
- a path to a body file: an MJCF written by `xembody bodies sample` (its `.json` next to it
  keeps the facts) or any MJCF/URDF the loader reads;
- a dict: the Embodiment's fields (`dataclasses.asdict`, with `mjcf`), as teleop datasets
  store it, or a smaller dict with a `source` (or `name`);
- a generated body's name, `"arm_s3"`: all that older datasets stored.

`resolve_body` takes any of them; `generated_body` splits a generator reference into
(body class, seed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import registry
from .embodiment import ActionSpace, Embodiment, JointInfo, SensorLayout

_SOURCE = re.compile(r"generator:(\w+)\(seed=(-?\d+)\)")
_NAME = re.compile(r"(\w+?)_s(\d+)")


def generator_source(body_class: str, seed: int) -> str:
    """The `Embodiment.source` of generated body `body_class` with `seed`."""
    return f"generator:{body_class}(seed={int(seed)})"


def generated_body(ref: str) -> tuple[str, int] | None:
    """(body class, seed) when `ref` is a generator source ("generator:arm(seed=3)") or a
    generated body's name ("arm_s3") of a registered class; None otherwise."""
    found = _SOURCE.fullmatch(ref) or _NAME.fullmatch(ref)
    if found and found[1] in registry.names():
        return found[1], int(found[2])
    return None


def embodiment_from_dict(facts: dict[str, Any]) -> Embodiment:
    """An Embodiment from its fields as `dataclasses.asdict` wrote them (JSON round trip:
    tuples as lists). Needs "mjcf"."""
    d = dict(facts)
    joints = tuple(JointInfo(**{**j, "range": tuple(j["range"])}) for j in d.pop("joints"))
    a = d.pop("action")
    action = ActionSpace(kind=a["kind"], low=tuple(a["low"]), high=tuple(a["high"]))
    return Embodiment(joints=joints, action=action, sensors=SensorLayout(**d.pop("sensors")), **d)


def resolve_body(ref: str | Path | dict[str, Any] | Embodiment, seed: int = 0) -> Embodiment:
    """The Embodiment `ref` names (see the module docstring for the forms). `seed` only
    applies to a bare body class; the other forms carry their own."""
    if isinstance(ref, Embodiment):
        return ref
    if isinstance(ref, dict):
        if "mjcf" in ref:
            return embodiment_from_dict(ref)
        key = ref.get("source") or ref.get("name")
        if not key:
            raise ValueError(f"body {sorted(ref)}: a body dict needs 'mjcf', 'source' or 'name'")
        return resolve_body(str(key))
    ref = str(ref)
    if ref in registry.names():
        return registry.sample(ref, seed=seed)
    generated = generated_body(ref)
    if generated:
        return registry.sample(*generated)
    path = Path(ref)
    if path.with_suffix(path.suffix + ".json").is_file():
        return Embodiment.read(path)
    if path.exists():  # a file, or a robot description folder
        from .loader import load_body

        return load_body(path)
    raise FileNotFoundError(
        f"body {ref!r}: neither a body class ({', '.join(registry.names())}), a generated "
        "body ('generator:arm(seed=0)' or 'arm_s0') nor a file"
    )
