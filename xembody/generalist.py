"""`xembody generalist`: one policy for many bodies, end to end.

    xembody generalist run  --task reach --out runs/generalist-reach   # every stage
    xembody generalist eval --out runs/generalist-reach --json         # the table again

Stages (each skipped when its output exists, so an interrupted run resumes):
1. bodies: `train_bodies` sampled from the task's body class, and held-out bodies sampled
   outside the training ranges (`heldout_overrides`), written to out/bodies/;
2. demos: a scripted teacher on each training body -> out/demos/<body>.zarr;
3. base: behaviour cloning of the joint-token student on all demos -> out/base.pt, and the
   base bound to each body, exported -> out/base/<body>/;
4. specialists: residual PPO on each training body over its frozen base -> out/specialists/;
5. distill: DAgger from the specialists into one student over mixed-body rollouts ->
   out/generalist.pt;
6. eval: success per body for base, specialists and generalist, and on the held-out bodies
   -> out/results.json (and docs/RESULTS.md with --write-docs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from xembody.config import add_arguments, field, from_args

# Per task: its scripted teacher and the defaults of the options left empty.
TASKS = {
    "reach": {
        "teacher": "xembody.models.teachers:ReachDiffIKTeacher",
        "out": "runs/generalist-reach",
        # long arms of 5, 6 and 7 joints (the held-out ones are longer still)
        "train_bodies": "4,8,9,14",
        "heldout_overrides": "link_length=0.30:0.36",  # longer links than any training arm
        "specialist_iterations": 150,
        # the differential-IK base already succeeds; a small residual keeps the specialists
        # close to it, and the generalist distilled from them generalises (0.5: held-out
        # success 92 % -> 28 %, docs/RESULTS.md)
        "residual_scale": 0.1,
    },
    "navigate": {
        "teacher": "xembody.models.teachers:NavigatePlannerTeacher",
        "out": "runs/generalist-navigate",
        "train_bodies": "0,1,2,6",  # two omnidirectional, two differential bases
        # a wider wheelbase and a longer chassis than any training base
        "heldout_overrides": "track_width=0.70:0.80,length=0.62:0.72",
        # at 0.5 and 150 iterations the specialists plateau near 80 % (docs/RESULTS.md)
        "specialist_iterations": 300,
        "residual_scale": 1.0,
    },
}


def _per_task(name: str) -> str:
    return "unset: by task, " + "; ".join(f"{t} {d[name]}" for t, d in TASKS.items())


@dataclasses.dataclass(kw_only=True)
class GeneralistConfig:
    task: str = field("reach", f"task ({', '.join(TASKS)})")
    out: str = field("", "output folder (stages resume from it); empty: runs/generalist-<task>")
    train_bodies: str = field(
        "", "seeds of the training bodies (comma-separated); " + _per_task("train_bodies")
    )
    heldout_bodies: str = field("100,101", "seeds of the held-out bodies")
    heldout_overrides: str = field(
        "",
        "generator ranges for held-out bodies, name=lo:hi,...; " + _per_task("heldout_overrides"),
    )
    teacher: str = field("", "scripted teacher, module:Class; " + _per_task("teacher"))
    demo_episodes: int = field(64, "teacher episodes per training body")
    demo_noise: float = field(0.1, "action noise executed (not recorded) during demos")
    bc_epochs: int = field(20, "behaviour-cloning epochs")
    specialist_iterations: int | None = field(
        None, "residual PPO iterations per body; " + _per_task("specialist_iterations")
    )
    specialist_envs: int = field(128, "envs per residual PPO run")
    residual_scale: float | None = field(
        None, "bound of the residual correction (action units); " + _per_task("residual_scale")
    )
    dagger_iterations: int = field(12, "DAgger iterations")
    dagger_envs: int = field(32, "envs per body during DAgger")
    eval_episodes: int = field(100, "evaluation episodes per body and policy")
    jacobian_obs: bool = field(
        True, "reach: per-joint Jacobian-error terms in the observation (other tasks: unused)"
    )
    ik_obs: bool = field(True, "reach: a per-joint damped-least-squares IK step in the observation")
    gravity_obs: bool = field(
        True, "reach: each joint's deflection under gravity (torque / kp) in the observation"
    )
    relative_actions: bool = field(
        True,
        "reach: the student outputs joint targets relative to the measured angles (a fixed "
        "skip), not absolute ones",
    )
    seed: int = field(0, "seed of envs and networks")
    json: bool = field(False, "print the results as JSON")
    write_docs: bool = field(False, "write the table into docs/RESULTS.md")

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r}: expected one of {sorted(TASKS)}")
        for name, value in TASKS[self.task].items():
            if getattr(self, name) in ("", None):
                setattr(self, name, value)
        for name in ("demo_episodes", "bc_epochs", "dagger_iterations", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 1")
        _seeds(self.train_bodies, "train_bodies")
        _overrides(self.heldout_overrides)


def _seeds(text: str, name: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected comma-separated integers") from None
    if not seeds:
        raise ValueError(f"{name}={text!r}: expected at least one seed")
    return seeds


def _overrides(text: str) -> dict[str, tuple[float, float]]:
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            key, rng = item.split("=")
            lo, hi = (float(v) for v in rng.split(":"))
        except ValueError:
            raise ValueError(f"heldout_overrides item {item!r}: expected name=lo:hi") from None
        out[key] = (lo, hi)
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generalist", help="IL base -> residual specialists -> one generalist")
    p.add_argument("stage", choices=("run", "eval"), help="run every stage, or only evaluate")
    add_arguments(p, GeneralistConfig)
    p.set_defaults(run=lambda a: run(a.stage, from_args(GeneralistConfig, a)))


def run(stage: str, cfg: GeneralistConfig) -> int:
    from xembody.models import pipeline

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    pipe = pipeline.Pipeline(cfg)
    if stage == "run":
        pipe.run_all()
    results = pipe.evaluate()
    (Path(cfg.out) / "results.json").write_text(json.dumps(results, indent=2))
    print(pipeline.table(results))
    if cfg.json:
        print(json.dumps(results, indent=2))
    if cfg.write_docs:
        pipeline.write_results_doc(results, Path("docs/RESULTS.md"))
    print(f"generalist {stage}: {time.perf_counter() - t0:.0f} s; outputs in {cfg.out}")
    return 0
