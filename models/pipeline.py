"""The generalist pipeline's stages (configured by `models.generalist_config`; the command
line is `xembody generalist`), and its report: per task, what a cell of the results table
holds (`SCORES`)."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from xembody.models.evaluation import run_episodes, summarize
from xembody.models.export import export_module
from xembody.models.generalist import (
    EXCLUDED_TERMS,
    BodyBinding,
    BoundStudent,
    Policy,
    dagger,
    fit,
    load_demos,
    make_student,
    record_demos,
)
from xembody.models.generalist_config import (
    TASKS,
    GeneralistConfig,
    parse_overrides,
    parse_seeds,
)
from xembody.models.joint_policy import JointTokenPolicy
from xembody.models.run import load_runner, resolve_body
from xembody.models.training import TrainConfig, train
from xembody.sim import tasks
from xembody.sim.bodies import Embodiment, registry
from xembody.sim.env import BodyEnv

# The student's shape; a task's "student" entry in TASKS changes it for that task.
STUDENT = {"dim": 64, "heads": 4, "layers": 2}


class Pipeline:
    def __init__(self, cfg: GeneralistConfig) -> None:
        self.cfg = cfg
        self.scores = SCORES[TASKS[cfg.task]["scores"]]
        # No scripted teacher (legs): no demos and no base; plain PPO specialists.
        self.teacher_cls = load_teacher(cfg.teacher)
        self.out = Path(cfg.out)
        self._bindings: dict[Path, BodyBinding] = {}
        self.entry = tasks.get(cfg.task)
        body_class = self.entry.default_body
        self.out.mkdir(parents=True, exist_ok=True)
        overrides = parse_overrides(cfg.heldout_overrides)
        self.train_bodies = [
            self._body(registry.sample(body_class, s)) for s in parse_seeds(cfg.train_bodies, "")
        ]
        self.heldout_bodies = [
            self._body(registry.sample(body_class, s, **overrides), tag="heldout")
            for s in parse_seeds(cfg.heldout_bodies, "heldout_bodies")
        ] + [
            self._body(registry.sample(body_class, s), tag="unseen")
            for s in parse_seeds(cfg.heldout_in_range, "heldout_in_range", required=False)
        ]
        self.zero_shot_bodies = [
            self._body(_robot_file(f, cfg.task), tag="zeroshot")
            for f in filter(None, (f.strip() for f in cfg.zero_shot.split(",")))
        ]
        per_task = TASKS[cfg.task]
        self.task_overrides = {n: True for n in per_task.get("obs_options", ()) if getattr(cfg, n)}
        # terms of the observation the student does not see
        self.exclude = () if cfg.student_last_action else EXCLUDED_TERMS
        # reach: targets relative to the measured joint angles
        self.relative_to = per_task.get("relative_to", "") if cfg.relative_actions else ""

    def _body(self, emb: Embodiment, tag: str = "") -> Path:
        name = f"{emb.name}-{tag}" if tag else emb.name
        path = self.out / "bodies" / f"{name}.xml"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            emb.write(path)
        return path

    def env(self, body: Path, n: int, *, randomize: bool = True, seed: int = 0) -> BodyEnv:
        emb = resolve_body(str(body))
        cfg = tasks.make_config(self.cfg.task, emb.body_class, **self.task_overrides)
        return tasks.make_env(self.cfg.task, emb, n, cfg=cfg, randomize=randomize, seed=seed,
                              num_threads=1)  # fmt: skip

    # --- stages -------------------------------------------------------------------------
    def run_all(self) -> None:
        if self.teacher_cls is not None:
            self.demos()
        base = self.base()
        self.specialists()
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

    def student(self) -> JointTokenPolicy:
        """A freshly initialised student for the task's observation layout."""
        torch.manual_seed(self.cfg.seed)
        binding = self._binding(self.train_bodies[0])
        shape = STUDENT | TASKS[self.cfg.task].get("student", {})
        student = make_student(binding, relative_to=self.relative_to, **shape)
        rows = [self._binding(b).joint_desc for b in self.train_bodies]
        student.fit_descriptors(torch.cat(rows))
        return student

    def base(self) -> JointTokenPolicy | None:
        """The student cloned from the demos (None without a scripted teacher)."""
        if self.teacher_cls is None:
            return None
        path = self.out / "base.pt"
        bindings = {b: self._binding(b) for b in self.train_bodies}
        student = self.student()
        if path.exists():
            student.load_state_dict(torch.load(path))
        else:
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

    def specialists(self) -> None:
        """PPO per training body: residual over the body's frozen base when there is one,
        else a plain MLP policy with the task's defaults."""
        for body in self.train_bodies:
            folder = self.out / "specialists" / f"{self.cfg.task}-{body.stem}" / "run"
            if list(folder.glob("model_*.pt")):
                continue
            residual = {}
            if self.teacher_cls is not None:
                residual = {"base_policy": str(self.out / "base" / body.stem),
                            "residual_scale": self.cfg.residual_scale}  # fmt: skip
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
                    max_minutes=self.cfg.specialist_minutes,
                    **residual,
                ),
                self.task_overrides,
            )

    def _specialist(self, body: Path, env: BodyEnv) -> Policy:
        emb = resolve_body(str(body))
        folder = self.out / "specialists" / f"{self.cfg.task}-{emb.name}" / "run"
        # the base from this output folder, wherever the folder was when training ran
        base = self.out / "base" / body.stem if self.teacher_cls is not None else None
        return load_runner(folder, env, base_policy=base).get_inference_policy()

    def distill(self, base: JointTokenPolicy | None) -> JointTokenPolicy:
        """DAgger into the base (it already knows the bodies) or, without one, into a
        freshly initialised student."""
        path = self.out / "generalist.pt"
        student = copy.deepcopy(base) if base is not None else self.student()
        if path.exists():
            student.load_state_dict(torch.load(path))
            return student
        envs = [self.env(b, self.cfg.dagger_envs, seed=self.cfg.seed) for b in self.train_bodies]
        teachers = [self._specialist(b, e) for b, e in zip(self.train_bodies, envs, strict=True)]
        dagger(student, envs, teachers, iterations=self.cfg.dagger_iterations,
               keep=self.cfg.dagger_keep, normalize=self.cfg.normalize_inputs,
               action_noise=self.cfg.dagger_action_noise, desc_noise=self.cfg.dagger_desc_noise,
               bindings=[self._binding(b) for b in self.train_bodies])  # fmt: skip
        torch.save(student.state_dict(), path)
        for e in envs:
            e.close()
        return student

    def export(self) -> list[Path]:
        """The generalist bound to each body (training, held-out, zero-shot), exported as
        a robot runs it -> out/export/<body>/ (`xembody eval --checkpoint` takes one, with
        `--transfer` too). Existing exports are kept. Returns the folders."""
        generalist = self.distill(self.base())
        folders = []
        for body in self.train_bodies + self.heldout_bodies + self.zero_shot_bodies:
            folder = self.out / "export" / body.stem
            if not (folder / "policy.json").exists():
                env = self.env(body, 1)
                export_module(BoundStudent(generalist, self._binding(body)).eval(), env, folder)
                env.close()
            folders.append(folder)
        return folders

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        base = self.base()
        generalist = self.distill(base)
        rows = []
        for body, kind in (
            [(b, "train") for b in self.train_bodies]
            + [(b, "heldout") for b in self.heldout_bodies]
            + [(b, "zero_shot") for b in self.zero_shot_bodies]
        ):
            binding = self._binding(body)
            row = {"body": body.stem, "joints": binding.num_joints, "heldout": kind != "train"}
            if kind == "zero_shot":
                row["zero_shot"] = True
            students = {"base": base, "generalist": generalist}
            bound = {
                k: BoundStudent(p, binding).eval() for k, p in students.items() if p is not None
            }
            # each made for the env it is evaluated on (a privileged teacher reads it)
            policies = {k: (lambda env, p=p: lambda o: p(o["policy"])) for k, p in bound.items()}
            if kind == "train":
                policies["specialist"] = lambda env, b=body: self._specialist(b, env)
            if self.teacher_cls is not None:
                policies["teacher"] = self.teacher_cls
            for name, make in policies.items():
                row[name] = self._score(body, make)
            rows.append(row)
            print(f"eval {body.stem}: " + ", ".join(
                f"{k} {self.scores.short(row[k])}" for k in policies))  # fmt: skip
        return {"task": self.cfg.task, "config": dataclasses.asdict(self.cfg), "rows": rows}

    def _score(self, body: Path, make_policy) -> dict[str, Any]:
        """One cell: the task's scores of a policy over `eval_episodes` on nominal physics."""
        n = min(64, self.cfg.eval_episodes)
        env = self.env(body, n, randomize=False, seed=self.cfg.seed + 1000)
        records = run_episodes(env, make_policy(env), self.cfg.eval_episodes)
        env.close()
        return self.scores.cell(summarize(records))

    def _binding(self, body: Path) -> BodyBinding:
        """The body's binding, built once (an env of one) and kept."""
        if body not in self._bindings:
            env = self.env(body, 1)
            self._bindings[body] = BodyBinding.from_env(
                env,
                self.exclude,
                root_frame=self.cfg.joint_root_frame,
                subtree=self.cfg.joint_subtree,
            )
            env.close()
        return self._bindings[body]


def load_teacher(text: str, example: str = "xembody.models.teachers:ReachDiffIKTeacher"):
    """The scripted teacher class `module:Class` names; None for an empty name."""
    if not text:
        return None
    module, _, name = text.partition(":")
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"teacher={text!r}: expected module:Class, e.g. {example}") from None


def _robot_file(path: str, task: str) -> Embodiment:
    """A robot file (URDF/MJCF, or its card) loaded as `xembody train --body FILE` loads it,
    the card beside it read; raises naming the card field when it cannot do `task`."""
    from xembody.sim.bodies.for_training import check_for_task, load_for_training

    emb = load_for_training(path)
    check_for_task(task, emb)
    return emb


# --- the report ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Scores:
    """What a task's evaluation reports. A row of the results holds, per policy, one cell
    made by `cell` from `models.evaluation.summarize`'s output."""

    cell: Callable[[dict], dict[str, Any]]
    short: Callable[[dict], str]  # a cell in a few words (progress lines)
    summary: Callable[[dict], dict[str, float]]  # results -> means over bodies and ratios
    table: Callable[[dict], str]  # results -> a markdown table and a line of means
    note: str  # what a cell holds ({episodes}: episodes per cell)


COLUMNS = {"base": "base IL", "specialist": "residual specialist", "generalist": "generalist",
           "teacher": "scripted teacher"}  # fmt: skip


def _groups(rows: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """Rows of the training bodies, of the held-out ones, of the zero-shot ones."""
    inside = [r for r in rows if not r["heldout"]]
    held = [r for r in rows if r["heldout"] and not r.get("zero_shot")]
    return inside, held, [r for r in rows if r.get("zero_shot")]


def _label(r: dict) -> str:
    return r["body"] + (" (zero-shot)" if r.get("zero_shot") else
                        " (held out)" if r["heldout"] else "")  # fmt: skip


# success: reach, navigate
def _success_cell(s: dict) -> dict[str, Any]:
    return {"mean": s["success_rate"]["mean"], "ci95": s["success_rate"]["ci95"],
            "episodes": s["episodes"]}  # fmt: skip


def _success_summary(results: dict[str, Any]) -> dict[str, float]:
    """Means over bodies, and the ratios the issue's targets are stated in."""
    rows = results["rows"]
    inside, held, _ = _groups(rows)
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


def _success_table(results: dict[str, Any]) -> str:
    def cell(r: dict, k: str) -> str:
        if k not in r:
            return "-"
        lo, hi = r[k]["ci95"]
        return f"{100 * r[k]['mean']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"

    columns = {k: v for k, v in COLUMNS.items() if k != "teacher"}
    if any("teacher" in r for r in results["rows"]):
        columns["teacher"] = COLUMNS["teacher"]
    lines = [
        f"| body ({results['task']}) | joints | " + " | ".join(columns.values()) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for r in results["rows"]:
        lines.append(
            f"| {_label(r)} | {r['joints']} | " + " | ".join(cell(r, k) for k in columns) + " |"
        )
    s = _success_summary(results)
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


# tracking: velocity (success is not defined there)
TRACKING = {"lin_vel_error": "linear (m/s)", "yaw_rate_error": "yaw (rad/s)",
            "termination_rate": "falls"}  # fmt: skip


def _tracking_cell(s: dict) -> dict[str, Any]:
    cell: dict[str, Any] = {k: s["metrics"][k] for k in TRACKING if k in s["metrics"]}
    return cell | {"termination_rate": s["termination_rate"], "episodes": s["episodes"]}


def _tracking_short(c: dict) -> str:
    return (f"linear {c['lin_vel_error']['mean']:.3f} m/s, yaw {c['yaw_rate_error']['mean']:.3f}"
            f" rad/s, falls {100 * c['termination_rate']['mean']:.0f}%")  # fmt: skip


def _tracking_summary(results: dict[str, Any]) -> dict[str, float]:
    """Means over bodies of each score per group, and the error ratios (lower is better
    for the errors: generalist / specialists <= 1 means no loss from distillation)."""
    inside, held, zero = _groups(results["rows"])
    nan = float("nan")
    mean = lambda rs, p, m: sum(r[p][m]["mean"] for r in rs) / len(rs) if rs else nan  # noqa: E731
    s = {}
    for m in TRACKING:
        s[f"specialist_{m}"] = mean(inside, "specialist", m)
        s[f"generalist_{m}"] = mean(inside, "generalist", m)
        s[f"generalist_heldout_{m}"] = mean(held, "generalist", m)
        s[f"generalist_zero_shot_{m}"] = mean(zero, "generalist", m)
    for m in ("lin_vel_error", "yaw_rate_error"):
        gen = max(s[f"generalist_{m}"], 1e-9)
        s[f"{m}_generalist_over_specialist"] = gen / max(s[f"specialist_{m}"], 1e-9)
        s[f"{m}_heldout_over_in_distribution"] = s[f"generalist_heldout_{m}"] / gen
        s[f"{m}_zero_shot_over_in_distribution"] = s[f"generalist_zero_shot_{m}"] / gen
    return s


def _tracking_table(results: dict[str, Any]) -> str:
    def cell(r: dict, p: str, m: str) -> str:
        if p not in r:
            return "-"
        (lo, hi), v = r[p][m]["ci95"], r[p][m]["mean"]
        if m == "termination_rate":
            return f"{100 * v:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"
        return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"

    rows = results["rows"]
    policies = [p for p in COLUMNS if any(p in r for r in rows)]
    names = COLUMNS | ({} if "base" in policies else {"specialist": "PPO specialist"})
    heads = [f"{names[p]}: {label}" for p in policies for label in TRACKING.values()]
    lines = [
        f"| body ({results['task']}) | joints | " + " | ".join(heads) + " |",
        "|---|---:|" + "---:|" * len(heads),
    ]
    for r in results["rows"]:
        cells = [cell(r, p, m) for p in policies for m in TRACKING]
        lines.append(f"| {_label(r)} | {r['joints']} | " + " | ".join(cells) + " |")
    lines.append("\n" + _tracking_means(results))
    return "\n".join(lines)


def _tracking_means(results: dict[str, Any]) -> str:
    """The line of means under the table; a group without bodies (no zero-shot file, no
    held-out body) is left out rather than printed as nan."""
    s = _tracking_summary(results)
    _, held, zero = _groups(results["rows"])
    groups = [("held out", "heldout", held), ("zero-shot", "zero_shot", zero)]
    groups = [(name, key) for name, key, rows in groups if rows]
    parts = []
    for m, w in {"lin_vel_error": "linear", "yaw_rate_error": "yaw-rate"}.items():
        text = f"{w} error specialists {s[f'specialist_{m}']:.3f}, generalist "
        text += ", ".join(
            [f"{s[f'generalist_{m}']:.3f} in distribution"]
            + [f"{s[f'generalist_{k}_{m}']:.3f} {g}" for g, k in groups]
        )
        text += f" (generalist / specialists {s[f'{m}_generalist_over_specialist']:.2f}"
        if held:
            text += f", held-out / in-distribution {s[f'{m}_heldout_over_in_distribution']:.2f}"
        parts.append(text + ")")
    falls = [f"{100 * s['generalist_termination_rate']:.0f}% in distribution"] + [
        f"{100 * s[f'generalist_{k}_termination_rate']:.0f}% {g}" for g, k in groups
    ]
    falls_text = f"specialists {100 * s['specialist_termination_rate']:.0f}%, generalist "
    return f"Means: {'; '.join(parts)}. Falls: {falls_text}{', '.join(falls)}."


SCORES = {
    "success": Scores(
        cell=_success_cell,
        short=lambda c: f"{100 * c['mean']:.0f}%",
        summary=_success_summary,
        table=_success_table,
        note="Success over {episodes} episodes per cell (nominal physics), 95% Wilson "
        "intervals; one seed.",
    ),
    "tracking": Scores(
        cell=_tracking_cell,
        short=_tracking_short,
        summary=_tracking_summary,
        table=_tracking_table,
        note="Per-episode mean tracking errors over {episodes} episodes per cell (nominal "
        "physics; commands drawn from the task's ranges, the same draws for every policy on "
        "a body), means with 95% intervals; falls: the share of episodes ended by a fall "
        "(95% Wilson intervals); one seed. Success is not defined for this task.",
    ),
}


def _scores(results: dict[str, Any]) -> Scores:
    return SCORES[TASKS[results["task"]]["scores"]]


def summary(results: dict[str, Any]) -> dict[str, float]:
    """Means over bodies, and the ratios the issue's targets are stated in."""
    return _scores(results).summary(results)


def table(results: dict[str, Any]) -> str:
    return _scores(results).table(results)


def _options(cfg: dict[str, Any]) -> str:
    """The command-line options that reproduce `cfg`: the task, and every option whose value
    differs from that task's default."""
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
    note = _scores(results).note.format(episodes=cfg["eval_episodes"])
    section = (
        f"## Generalist: {results['task']}\n\n"
        f"Command: `{command}`. {note}\n\n"
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
