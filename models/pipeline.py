"""The generalist pipeline's stages (see `xembody.generalist` for the user's view)."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import torch

from xembody.models.evaluation import run_episodes, summarize
from xembody.models.export import export_module
from xembody.models.generalist import (
    BodyBinding,
    BoundStudent,
    dagger,
    fit,
    load_demos,
    make_student,
    record_demos,
)
from xembody.models.joint_policy import JointTokenPolicy
from xembody.models.run import load_runner, resolve_body
from xembody.sim import tasks
from xembody.sim.bodies import Embodiment, registry
from xembody.sim.env import BodyEnv
from xembody.sim.tasks.base import RandomizationCfg
from xembody.train import TrainConfig, train

STUDENT = {"dim": 64, "heads": 4, "layers": 2}


class Pipeline:
    def __init__(self, cfg) -> None:
        from xembody.generalist import TASKS, _overrides, _seeds

        self.cfg = cfg
        module, _, name = cfg.teacher.partition(":")
        try:
            self.teacher_cls = getattr(__import__(module, fromlist=[name]), name)
        except (ImportError, AttributeError, ValueError):
            raise ValueError(f"teacher={cfg.teacher!r}: expected module:Class, e.g. "
                             f"{TASKS[cfg.task]['teacher']}") from None  # fmt: skip
        self.out = Path(cfg.out)
        self._bindings: dict[Path, BodyBinding] = {}
        self.entry = tasks.get(cfg.task)
        body_class = self.entry.default_body
        self.out.mkdir(parents=True, exist_ok=True)
        overrides = _overrides(cfg.heldout_overrides)
        self.train_bodies = [
            self._body(registry.sample(body_class, s)) for s in _seeds(cfg.train_bodies, "")
        ]
        self.heldout_bodies = [
            self._body(registry.sample(body_class, s, **overrides), tag="heldout")
            for s in _seeds(cfg.heldout_bodies, "heldout_bodies")
        ]
        reach = cfg.task == "reach"
        self.task_overrides = {
            name: True
            for name in ("jacobian_obs", "ik_obs", "gravity_obs")
            if reach and getattr(cfg, name)
        }
        # reach: targets relative to the measured joint angles (navigate: body twists)
        self.relative_to = "joint_pos" if reach and cfg.relative_actions else ""

    def _body(self, emb: Embodiment, tag: str = "") -> Path:
        name = f"{emb.name}-{tag}" if tag else emb.name
        path = self.out / "bodies" / f"{name}.xml"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            emb.write(path)
        return path

    def env(self, body: Path, n: int, *, randomize: bool = True, seed: int = 0) -> BodyEnv:
        cfg = tasks.make_config(self.cfg.task, **self.task_overrides)
        if not randomize:
            cfg = dataclasses.replace(cfg, randomization=RandomizationCfg.off())
        task = tasks.make_task(self.cfg.task, resolve_body(str(body)), cfg)
        return BodyEnv(task, n, seed=seed, num_threads=1)

    # --- stages -------------------------------------------------------------------------
    def run_all(self) -> None:
        self.demos()
        base = self.base()
        self.specialists(base)
        self.distill(base)

    def demos(self) -> None:
        for body in self.train_bodies:
            path = self.out / "demos" / f"{body.stem}.zarr"
            if (path / "zarr.json").exists():
                continue
            env = self.env(body, 32, seed=self.cfg.seed)
            ds = record_demos(
                env,
                self.teacher_cls(env),
                path,
                self.cfg.demo_episodes,
                action_noise=self.cfg.demo_noise,
            )
            ok = sum(bool(e["success"]) for e in ds.episodes)
            print(f"demos {body.stem}: {ds.num_episodes} episodes ({ok} successful), {path}")
            env.close()

    def base(self) -> JointTokenPolicy:
        path = self.out / "base.pt"
        bindings = {b: self._binding(b) for b in self.train_bodies}
        student = make_student(
            next(iter(bindings.values())), relative_to=self.relative_to, **STUDENT
        )
        if path.exists():
            student.load_state_dict(torch.load(path))
        else:
            torch.manual_seed(self.cfg.seed)
            data = [
                load_demos(self.out / "demos" / f"{b.stem}.zarr", bindings[b])
                for b in self.train_bodies
            ]
            print(f"behaviour cloning on {sum(len(d.obs) for d in data)} frames")
            fit(student, data, epochs=self.cfg.bc_epochs)
            torch.save(student.state_dict(), path)
        for body, binding in bindings.items():
            folder = self.out / "base" / body.stem
            if not (folder / "policy.json").exists():
                env = self.env(body, 1)
                export_module(BoundStudent(student, binding), env, folder)
                env.close()
        return student

    def specialists(self, base: JointTokenPolicy) -> None:
        for body in self.train_bodies:
            folder = self.out / "specialists" / f"{self.cfg.task}-{body.stem}" / "run"
            if list(folder.glob("model_*.pt")):
                continue
            train(
                TrainConfig(
                    task=self.cfg.task,
                    body=str(body),
                    num_envs=self.cfg.specialist_envs,
                    iterations=self.cfg.specialist_iterations,
                    seed=self.cfg.seed,
                    threads=1,
                    log_root=str(self.out / "specialists"),
                    run_name="run",
                    save_interval=max(1, self.cfg.specialist_iterations),
                    base_policy=str(self.out / "base" / body.stem),
                    residual_scale=self.cfg.residual_scale,
                ),
                self.task_overrides,
            )

    def _specialist(self, body: Path, env: BodyEnv):
        emb = resolve_body(str(body))
        folder = self.out / "specialists" / f"{self.cfg.task}-{emb.name}" / "run"
        # the base from this output folder, wherever the folder was when training ran
        base = self.out / "base" / body.stem
        return load_runner(folder, env, base_policy=base).get_inference_policy()

    def distill(self, base: JointTokenPolicy) -> JointTokenPolicy:
        path = self.out / "generalist.pt"
        if path.exists():
            student = copy.deepcopy(base)
            student.load_state_dict(torch.load(path))
            return student
        student = copy.deepcopy(base)  # start from the base: it already knows the bodies
        envs = [self.env(b, self.cfg.dagger_envs, seed=self.cfg.seed) for b in self.train_bodies]
        teachers = [self._specialist(b, e) for b, e in zip(self.train_bodies, envs, strict=True)]
        dagger(student, envs, teachers, iterations=self.cfg.dagger_iterations)
        torch.save(student.state_dict(), path)
        for e in envs:
            e.close()
        return student

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        base = self.base()
        generalist = self.distill(base)
        rows = []
        for body, heldout in [(b, False) for b in self.train_bodies] + [
            (b, True) for b in self.heldout_bodies
        ]:
            binding = self._binding(body)
            row = {"body": body.stem, "joints": binding.num_joints, "heldout": heldout}
            bound = {
                "base": BoundStudent(base, binding).eval(),
                "generalist": BoundStudent(generalist, binding).eval(),
            }
            # each made for the env it is evaluated on (a privileged teacher reads it)
            policies = {k: (lambda env, p=p: lambda o: p(o["policy"])) for k, p in bound.items()}
            if not heldout:
                policies["specialist"] = lambda env, b=body: self._specialist(b, env)
            policies["teacher"] = self.teacher_cls
            for name, make in policies.items():
                row[name] = self._success(body, make)
            rows.append(row)
            print(
                f"eval {body.stem}: "
                + ", ".join(f"{k} {100 * row[k]['mean']:.0f}%" for k in policies)
            )
        return {"task": self.cfg.task, "config": dataclasses.asdict(self.cfg), "rows": rows}

    def _success(self, body: Path, make_policy) -> dict[str, Any]:
        n = min(64, self.cfg.eval_episodes)
        env = self.env(body, n, randomize=False, seed=self.cfg.seed + 1000)
        records = run_episodes(env, make_policy(env), self.cfg.eval_episodes)
        env.close()
        s = summarize(records)
        return {"mean": s["success_rate"]["mean"], "ci95": s["success_rate"]["ci95"],
                "episodes": s["episodes"]}  # fmt: skip

    def _binding(self, body: Path) -> BodyBinding:
        """The body's binding, built once (an env of one) and kept."""
        if body not in self._bindings:
            env = self.env(body, 1)
            self._bindings[body] = BodyBinding.from_env(env)
            env.close()
        return self._bindings[body]


def summary(results: dict[str, Any]) -> dict[str, float]:
    """Means over bodies, and the ratios the issue's targets are stated in."""
    rows = results["rows"]
    inside = [r for r in rows if not r["heldout"]]
    held = [r for r in rows if r["heldout"]]
    mean = lambda rs, k: sum(r[k]["mean"] for r in rs) / len(rs) if rs else float("nan")  # noqa: E731
    s = {
        "base": mean(inside, "base"),
        "specialist": mean(inside, "specialist"),
        "generalist": mean(inside, "generalist"),
        "generalist_heldout": mean(held, "generalist"),
        "base_heldout": mean(held, "base"),
    }
    if any("teacher" in r for r in rows):
        s["teacher"] = mean(inside, "teacher")
        s["teacher_heldout"] = mean(held, "teacher")
    s["generalist_over_base"] = s["generalist"] / max(s["base"], 1e-9)
    s["generalist_over_specialist"] = s["generalist"] / max(s["specialist"], 1e-9)
    s["heldout_over_in_distribution"] = s["generalist_heldout"] / max(s["generalist"], 1e-9)
    return s


def table(results: dict[str, Any]) -> str:
    def cell(r: dict, k: str) -> str:
        if k not in r:
            return "-"
        lo, hi = r[k]["ci95"]
        return f"{100 * r[k]['mean']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"

    columns = {"base": "base IL", "specialist": "residual specialist", "generalist": "generalist"}
    if any("teacher" in r for r in results["rows"]):
        columns["teacher"] = "scripted teacher"
    lines = [
        f"| body ({results['task']}) | joints | " + " | ".join(columns.values()) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for r in results["rows"]:
        name = r["body"] + (" (held out)" if r["heldout"] else "")
        lines.append(
            f"| {name} | {r['joints']} | " + " | ".join(cell(r, k) for k in columns) + " |"
        )
    s = summary(results)
    lines.append(
        f"\nMeans: base {100 * s['base']:.0f}%, specialists {100 * s['specialist']:.0f}%, "
        f"generalist {100 * s['generalist']:.0f}% in distribution and "
        f"{100 * s['generalist_heldout']:.0f}% held out. Generalist / base "
        f"{s['generalist_over_base']:.2f}x, / specialists {s['generalist_over_specialist']:.2f}, "
        f"held-out / in-distribution {s['heldout_over_in_distribution']:.2f}."
        + (
            f" Scripted teacher {100 * s['teacher']:.0f}% in distribution, "
            f"{100 * s['teacher_heldout']:.0f}% held out."
            if "teacher" in s
            else ""
        )
    )
    return "\n".join(lines)


def _options(cfg: dict[str, Any]) -> str:
    """The command-line options that reproduce `cfg`: the task, and every option whose value
    differs from that task's default."""
    from xembody.generalist import GeneralistConfig

    default = dataclasses.asdict(GeneralistConfig(task=cfg["task"]))
    parts = [f"--task {cfg['task']}"]
    for name, value in cfg.items():
        if name in ("task", "json", "write_docs") or value == default.get(name):
            continue
        flag = "--" + name.replace("_", "-")
        parts.append(flag if value is True else f"--no-{flag[2:]}" if value is False
                     else f"{flag} {value}")  # fmt: skip
    return " ".join(parts)


def write_results_doc(results: dict[str, Any], path: Path) -> None:
    """Replace (or add) this task's generalist section of docs/RESULTS.md."""
    cfg = results["config"]
    command = f"xembody generalist run {_options(cfg)} --write-docs"
    section = (
        f"## Generalist: {results['task']}\n\n"
        f"Command: `{command}`. Success over {cfg['eval_episodes']} episodes per cell "
        "(nominal physics), 95% Wilson intervals; one seed.\n\n"
        f"{table(results)}\n\n"
        f"```json\n{json.dumps(summary(results), indent=2)}\n```\n"
    )
    text = path.read_text() if path.exists() else "# Results\n"
    pattern = re.compile(rf"## Generalist: {results['task']}\n.*?(?=\n## |\Z)", re.S)
    text = (
        pattern.sub(section.rstrip() + "\n", text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + section)
    )
    path.write_text(text)
