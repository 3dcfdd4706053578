"""The body a training run asks for, and whether it can do the task: what `xembody train
--body` (and teleop, collect, the generalist's zero-shot robot files) load.

`load_for_training` takes a body reference (a generator class, a written body, a robot file
or its card) with the card options; `check_for_task` raises a one-line error naming the card
field to set when the body cannot do the task.
"""

from __future__ import annotations

from . import registry
from .embodiment import Embodiment
from .loader import load_body
from .reference import resolve_body


def load_for_training(
    body: str,
    seed: int = 0,
    *,
    card: str = "",
    body_class: str = "",
    base: str = "",
    ee: str = "",
    feet: tuple[str, ...] = (),
    package_path: tuple[str, ...] = (),
) -> Embodiment:
    """The body of `train --body` (a class, a written body, a robot file or a card) with
    the card options applied; options on a generated body class raise."""
    given = {
        "card": card or None,
        "body_class": body_class or None,
        "base": base or None,
        "ee": ee or None,
        "feet": list(feet) or None,
        "package_path": list(package_path) or None,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if not given or body in registry.names():
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ValueError(
                f"{flags}: only for a robot file (--body robot.urdf), not class {body!r}"
            )
        return resolve_body(body, seed)
    return load_body(body, **given)


def check_for_task(task: str, emb: Embodiment) -> None:
    """Raise a one-line error naming the card field to set when `emb` cannot do `task`."""
    from xembody.sim import tasks

    task_cls, _ = tasks.get(task).load()
    where = emb.source if not emb.source.startswith("generator") else emb.name
    if emb.body_class not in task_cls.body_classes:
        want = " or ".join(task_cls.body_classes)
        raise ValueError(
            f"{where}: task {task!r} needs a body of class {want}, this one is "
            f"{emb.body_class!r}: set class: in the card, or --body-class "
            f"{task_cls.body_classes[0]} (xembody bodies check {where} shows why)"
        )
    model = emb.compile()
    frames = _frames(model)
    if emb.body_class == "arm" and task == "reach" and not emb.sensors.ee_site:
        raise ValueError(
            f"{where}: no end effector: set ee: in the card, or --ee LINK; candidate frames: "
            f"{', '.join(frames) or 'none'}"
        )
    if task == "velocity":
        if not emb.floating_base:
            raise ValueError(
                f"{where}: task 'velocity' needs a floating base: set base: floating in the "
                "card, or --base floating"
            )
        sites = [model.site(s).name for s in range(model.nsite)]
        if not any(s.endswith("_foot") for s in sites):
            raise ValueError(
                f"{where}: no feet: set feet: in the card, or --feet LINK [LINK ...]; candidate "
                f"frames: {', '.join(frames) or 'none'}"
            )


def _frames(model) -> list[str]:
    """Names a card may give as ee/feet: sites, and bodies below a joint (deepest first)."""
    depth = {}
    for b in range(1, model.nbody):
        n, p = 0, b
        while p > 0:
            n += int(model.body_jntnum[p])
            p = int(model.body_parentid[p])
        depth[b] = n
    sites = [
        (depth[model.site_bodyid[s]], model.site(s).name)
        for s in range(model.nsite)
        if model.site_bodyid[s] and depth[model.site_bodyid[s]]
    ]
    leaves = [
        (depth[b], model.body(b).name)
        for b in range(1, model.nbody)
        if depth[b] and b not in set(model.body_parentid[1:])
    ]
    out = []
    for _, name in sorted(sites + leaves, key=lambda t: -t[0]):
        if name and name not in out:
            out.append(name)
    return out[:12]
