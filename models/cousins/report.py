"""The docs/RESULTS.md section of the twin-against-cousins experiment: its command, the
setting in words, the success table (pooled over seeds, 95 % Wilson interval, per seed) and
whether the target was met. `xembody cousins experiment --write-docs` puts it into the file
with xembody.real.perception.evaluate.write_results_section, as `cousins eval` does its own.
"""

from __future__ import annotations

from .experiment import EVALS, SETS


def section_title(task: str) -> str:
    """The section's first line (what `write_results_section` finds it by)."""
    return f"## Digital cousins: twin against cousins, {task} opening (issue 10)"


def results_section(result: dict, command: str) -> str:
    """The RESULTS.md section of `run_experiment`'s result."""
    cfg, task, t = result["config"], result["task_config"], result["target"]
    head = ["training set"] + [e.replace("_", " ") for e in EVALS]
    goal = (f"the top drawer at least {100 * task['open_m']:.0f} cm" if cfg["task"] == "drawer"
            else f"door 0 at least {task['open_rad']} rad")  # fmt: skip
    lines = [
        section_title(cfg["task"]), "",
        f"Command: `{command}` ({result['seconds']:.0f} s on the 2-core CPU). Task: open "
        f"{goal} with a generated arm "
        f"(arm seed {cfg['arm_seed']}) within {task['episode_seconds']} s (the `cabinet` "
        "task). Students: MLPs behaviour-cloned (models.bc.fit_mlp) on "
        f"{cfg['demos']} teacher episodes per training set. Each seed is its own "
        f"real room (room seeds {[r['room_seed'] for r in result['rooms'].values()]}), scanned "
        "from one view and extracted; the twin and the cousins come from the extraction, the "
        "real scene is the true cabinet at its true pose. Success over "
        f"{cfg['episodes']} episodes per cell and seed, pooled over {len(cfg['seeds'])} seeds "
        "[95 % Wilson interval] (per seed in parentheses).", "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]  # fmt: skip
    for name in SETS:
        row = [name.replace("_", " ")]
        for ev in EVALS:
            c = result["table"][name][ev]
            seeds = ", ".join(f"{100 * v:.0f}" for v in c["per_seed"])
            row.append(f"{100 * c['success']:.0f}% [{100 * c['ci95'][0]:.0f}, "
                       f"{100 * c['ci95'][1]:.0f}] ({seeds})")  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    met = "met" if t["met"] else "**not met**"
    lines += [
        "",
        f"Target (8 cousins against the twin on the real scene: at least +15 points with "
        f"separate intervals, and within 5 points on the twin): {met}. Real scene: "
        f"{t['real_gain_points']:+.0f} points (intervals separate: "
        f"{t['real_intervals_separate']}); on the twin: {t['twin_gap_points']:+.0f} points.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)
