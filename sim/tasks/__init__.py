"""Tasks: a registry of task names -> (task class, config class).

`make_task("reach", emb)` builds a task for a body, `make_env("reach", emb, n)` the vector
env that runs it (`randomize=False`: the nominal case); `names()` lists them. Each task
declares the body classes it accepts and fails clearly on any other.

The task classes (and torch) load with the first task made, not with this package: the
robot side imports `xembody.sim.tasks.math` without them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xembody.sim.bodies.embodiment import Embodiment

if TYPE_CHECKING:
    from xembody.sim.env import BodyEnv

    from .base import ObsTerm, RandomizationCfg, RewardTerm, Task, TaskConfig

_BASE = ("ObsTerm", "RandomizationCfg", "RewardTerm", "Task", "TaskConfig")


def __getattr__(name: str) -> Any:  # the base classes, loaded on first use
    if name in _BASE:
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class TaskEntry:
    name: str
    module: str
    task_class: str
    config_class: str
    default_body: str
    summary: str
    ppo: dict = dataclasses.field(
        default_factory=dict
    )  # PPOConfig values this task trains best with
    # config values by body class, over the config's defaults (a biped's slower stride)
    body_defaults: dict[str, dict] = dataclasses.field(default_factory=dict)

    def load(self) -> tuple[type[Task], type[TaskConfig]]:
        mod = importlib.import_module(self.module)
        return getattr(mod, self.task_class), getattr(mod, self.config_class)


_TASKS: dict[str, TaskEntry] = {}


def register(entry: TaskEntry) -> None:
    if entry.name in _TASKS:
        raise ValueError(f"task {entry.name!r} is registered twice")
    _TASKS[entry.name] = entry


def get(name: str) -> TaskEntry:
    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; expected one of {sorted(_TASKS)}") from None


def names() -> list[str]:
    return sorted(_TASKS)


def make_config(name: str, body_class: str = "", **overrides) -> TaskConfig:
    """The task's config: its defaults, then the entry's `body_defaults[body_class]`,
    then `overrides`."""
    entry = get(name)
    _, cfg_cls = entry.load()
    return cfg_cls(**(entry.body_defaults.get(body_class, {}) | overrides))


def make_task(name: str, emb: Embodiment, cfg: TaskConfig | None = None) -> Task:
    task_cls, cfg_cls = get(name).load()
    cfg = cfg if cfg is not None else cfg_cls()
    if not isinstance(cfg, cfg_cls):
        raise TypeError(f"task {name!r} takes a {cfg_cls.__name__}, got {type(cfg).__name__}")
    return task_cls(cfg, emb)


def nominal(cfg: TaskConfig) -> TaskConfig:
    """A copy of `cfg` without randomisation: nominal physics, no noise, pushes or latency."""
    from .base import RandomizationCfg

    return dataclasses.replace(cfg, randomization=RandomizationCfg.off())


def make_env(
    name: str,
    emb: Embodiment,
    num_envs: int,
    *,
    cfg: TaskConfig | None = None,
    randomize: bool = True,
    seed: int = 0,
    backend: str = "cpu",
    num_threads: int | None = None,
) -> BodyEnv:
    """The vector env of task `name` on `emb`, `num_envs` envs (`cfg`: the task's defaults
    when None; `randomize=False`: `nominal(cfg)`, as evaluation, replay and demos use)."""
    from xembody.sim.env import BodyEnv

    cfg = cfg if cfg is not None else make_config(name)
    if not randomize:
        cfg = nominal(cfg)
    task = make_task(name, emb, cfg)
    return BodyEnv(task, num_envs, seed=seed, backend=backend, num_threads=num_threads)


def config_from_dict(name: str, values: dict) -> TaskConfig:
    """Rebuild a task config saved with dataclasses.asdict (nested randomization too)."""
    from .base import RandomizationCfg

    _, cfg_cls = get(name).load()
    values = dict(values)
    if isinstance(values.get("randomization"), dict):
        r = {k: tuple(v) if isinstance(v, list) else v for k, v in values["randomization"].items()}
        values["randomization"] = RandomizationCfg(**r)
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    return cfg_cls(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields}
    )


def apply_overrides(name: str, cfg: TaskConfig, items: list[str] | tuple[str, ...]) -> TaskConfig:
    """`cfg` with KEY=VALUE edits (`vx=-1,1`, `randomization.push_interval_s=4`,
    `rewards.feet_slip=-0.1`): VALUE is JSON, else comma-separated numbers, else text."""
    values = dataclasses.asdict(cfg)
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"task option {item!r}, expected KEY=VALUE (for example vx=-1,1)")
        *parents, leaf = key.split(".")
        where = values
        for part in parents:
            if not isinstance(where.get(part), dict):
                raise ValueError(f"task option {key!r}: {part!r} is not a group of {name!r}")
            where = where[part]
        if leaf not in where and not (parents and parents[-1] == "rewards"):
            raise ValueError(
                f"task option {key!r}: no field {leaf!r}; expected one of {sorted(where)}"
            )
        where[leaf] = parse_value(text)
    return config_from_dict(name, values)


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:  # "1,3" -> (1, 3); "-1,1.5" -> (-1, 1.5)
        return tuple(json.loads(v) for v in text.split(","))
    except json.JSONDecodeError:
        return text


register(
    TaskEntry(
        "reach",
        "xembody.sim.tasks.reach",
        "ReachTask",
        "ReachConfig",
        "arm",
        "end-effector pose reaching for arms",
        ppo={"init_std": 0.5, "entropy_coef": 0.002, "hidden_dims": (256, 256, 128)},
    )
)
register(
    TaskEntry(
        "navigate",
        "xembody.sim.tasks.navigation",
        "NavigateTask",
        "NavigateConfig",
        "wheeled",
        "point-goal navigation among obstacles for mobile bases",
    )
)
register(
    TaskEntry(
        "velocity",
        "xembody.sim.tasks.locomotion",
        "VelocityTask",
        "VelocityConfig",
        "quadruped",
        "velocity-command tracking for quadrupeds and humanoids",
        body_defaults={"humanoid": {"gait_period": 0.6}},  # a biped's stride: 0.3 s per step
    )
)

register(
    TaskEntry(
        "cabinet",
        "xembody.sim.tasks.cabinet",
        "CabinetTask",
        "CabinetConfig",
        "arm",
        "opening a cabinet's top drawer or first door (part=drawer|door) for arms",
    )
)

__all__ = [
    "ObsTerm", "RandomizationCfg", "RewardTerm", "Task", "TaskConfig", "TaskEntry",
    "apply_overrides", "config_from_dict", "get", "make_config", "make_env", "make_task",
    "names", "nominal", "parse_value", "register",
]  # fmt: skip
