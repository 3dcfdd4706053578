"""Learning curve of a training run, read from its TensorBoard events, as JSON lines.

    python benchmarks/train_curve.py runs/velocity-humanoid_s0/<run> [--every 10]
    python benchmarks/train_curve.py RUN_A RUN_B --plot curves.png [--seconds 900]

One line per logged iteration (or every k-th, and always the last): iteration, seconds since
the first logged iteration, env-steps so far, the PPO log's mean reward and mean episode
length (over episodes that ended in that iteration's rollout) and env-steps/s. `--plot`
draws the runs' mean episode length and mean reward against wall time, one colour each. Used by
`benchmarks/gpu_check.sh` to put a GPU run's curve next to a CPU run's (issue 23).
"""

import argparse
import json
from pathlib import Path

TAGS = {
    "mean_reward": "Train/mean_reward",
    "mean_episode_length": "Train/mean_episode_length",
    "env_steps_per_s": "Perf/total_fps",
}


def curve(run: Path) -> list[dict]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted(run.glob("events.out.tfevents*"))
    if not events:
        raise SystemExit(f"no events.out.tfevents* in {run}: not a training run folder")
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    have = set(acc.Tags().get("scalars", []))
    missing = [t for t in TAGS.values() if t not in have]
    if missing:
        raise SystemExit(f"{run}: events lack {missing}; have {sorted(have)}")
    series = {k: {e.step: (e.wall_time, e.value) for e in acc.Scalars(t)} for k, t in TAGS.items()}
    steps = sorted(series["mean_reward"])
    run_json = json.loads((run / "run.json").read_text())
    per_it = int(run_json["settings"]["num_envs"]) * int(run_json["ppo"]["num_steps_per_env"])
    t0 = series["mean_reward"][steps[0]][0]
    rows = []
    for it in steps:
        row = {
            "iteration": it,
            "wall_s": round(series["mean_reward"][it][0] - t0, 2),
            "env_steps": (it + 1) * per_it,
        }
        for k in TAGS:
            if it in series[k]:
                row[k] = round(series[k][it][1], 4)
        rows.append(row)
    return rows


def plot(runs: dict[str, list[dict]], out: Path, seconds: float | None = None) -> None:
    """Mean episode length and mean reward against wall time, one line per run (PIL)."""
    from PIL import Image, ImageDraw

    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    keys = ("mean_episode_length", "mean_reward")
    width, panel_h, left, right, top, bottom = 760, 220, 60, 10, 22, 34
    img = Image.new("RGB", (width, panel_h * len(keys)), "white")
    draw = ImageDraw.Draw(img)
    t_max = seconds or max(r[-1]["wall_s"] for r in runs.values())
    for p, key in enumerate(keys):
        y0 = p * panel_h
        vals = [r[key] for rows in runs.values() for r in rows if key in r and r["wall_s"] <= t_max]
        lo, hi = min(vals), max(vals)
        hi = hi if hi > lo else lo + 1.0
        box = (left, y0 + top, width - right, y0 + panel_h - bottom)
        draw.rectangle(box, outline=(0, 0, 0))
        draw.text((left, y0 + 4), f"{key}  [{lo:.3g}, {hi:.3g}]", fill=(0, 0, 0))
        draw.text((left, box[3] + 4), f"wall time 0 .. {t_max:.0f} s", fill=(0, 0, 0))
        for c, (name, rows) in enumerate(runs.items()):
            pts = [(box[0] + (box[2] - box[0]) * r["wall_s"] / t_max,
                    box[3] - (box[3] - box[1]) * (r[key] - lo) / (hi - lo))
                   for r in rows if key in r and r["wall_s"] <= t_max]  # fmt: skip
            if len(pts) > 1:
                draw.line(pts, fill=colours[c % len(colours)], width=2)
            legend = (box[2] - 7 * len(name) - 8, box[3] - 18 - 14 * c)  # bottom right
            draw.text(legend, name, fill=colours[c % len(colours)])
    img.save(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="run folders")
    p.add_argument("--every", type=int, default=1, help="print every k-th iteration (and the last)")
    p.add_argument("--plot", type=Path, default=None, help="draw the runs' curves into this PNG")
    p.add_argument("--seconds", type=float, default=None, help="x axis of --plot: 0..this")
    a = p.parse_args()
    curves = {run.name: curve(run) for run in a.runs}
    if a.plot:
        plot(curves, a.plot, a.seconds)
        print(f"wrote {a.plot}")
        return
    for rows in curves.values():
        for i, row in enumerate(rows):
            if i % a.every == 0 or i == len(rows) - 1:
                print(json.dumps(row))


if __name__ == "__main__":
    main()
