"""`xembody generalist`: one policy for many bodies, end to end.

    xembody generalist run  --task reach --out runs/generalist-reach   # every stage
    xembody generalist eval --out runs/generalist-reach --json         # the table again
    xembody generalist export --out runs/generalist-reach   # out/export/<body>/ per body

Stages (each skipped when its output exists, so an interrupted run resumes):
1. bodies: `train_bodies` sampled from the task's body class, held-out bodies sampled
   outside the training ranges (`heldout_overrides`) and inside them
   (`heldout_in_range`), and `zero_shot` robot files, written to out/bodies/;
2. demos: a scripted teacher on each training body -> out/demos/<body>.zarr;
3. base: behaviour cloning of the joint-token student on all demos -> out/base.pt, and the
   base bound to each body, exported -> out/base/<body>/;
4. specialists: PPO on each training body, residual over its frozen base when there is
   one -> out/specialists/;
5. distill: DAgger from the specialists into one student (the base, or a fresh one) over
   mixed-body rollouts -> out/generalist.pt;
6. eval: the task's scores (success, or tracking errors and falls) per body and policy
   -> out/results.json (and docs/RESULTS.md with --write-docs);
7. export: the generalist bound to each body, exported as a robot runs it ->
   out/export/<body>/ (`xembody eval --checkpoint out/export/<body> --transfer` runs it on
   both physics backends and through the robot-side controller).

A task without a scripted teacher (velocity: legs have none) skips stages 2 and 3.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from xembody.config import add_arguments, from_args
from xembody.models.generalist_config import GeneralistConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generalist", help="(IL base ->) specialists -> one generalist")
    p.add_argument(
        "stage", choices=("run", "eval", "export"),
        help="run every stage, only evaluate, or only export the generalist per body",
    )  # fmt: skip
    add_arguments(p, GeneralistConfig)
    p.set_defaults(run=lambda a: run(a.stage, from_args(GeneralistConfig, a)))


def run(stage: str, cfg: GeneralistConfig) -> int:
    from xembody.models import pipeline

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    pipeline.load_teacher(cfg.teacher)  # a wrong name fails before anything is written
    if stage != "run" and not (Path(cfg.out) / "generalist.pt").exists():
        raise FileNotFoundError(
            f"{cfg.out}/generalist.pt: nothing to {stage}; `xembody generalist run` first"
        )
    pipe = pipeline.Pipeline(cfg)
    if stage == "run":
        pipe.run_all()
    if stage in ("run", "export"):
        folders = pipe.export()
        print(f"exported the generalist for {len(folders)} bodies: {cfg.out}/export/<body>")
    if stage == "export":
        return 0
    results = pipe.evaluate()
    (Path(cfg.out) / "results.json").write_text(json.dumps(results, indent=2))
    print(pipeline.table(results))
    if cfg.json:
        print(json.dumps(results, indent=2))
    if cfg.write_docs:
        pipeline.write_results_doc(results, Path("docs/RESULTS.md"))
    print(f"generalist {stage}: {time.perf_counter() - t0:.0f} s; outputs in {cfg.out}")
    return 0
