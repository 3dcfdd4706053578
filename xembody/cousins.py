"""`xembody cousins`: the digital twin and N digital cousins of a scanned scene.

    xembody cousins --scan scene.json --n 8 --out scenes/

    xembody cousins eval [--json] [--scenes K --seed S --out out/cousins_eval] [--write-docs]

The first writes twin.xml, cousin_00.xml ... cousin_NN.xml, manifest.json (per scene: its
assets and parameters, the MJCF digest, distance from the twin, check results) and
cousins.png (twin and cousins side by side). `--scan` is a SceneDescription JSON file or
a scan folder holding one as scene.json; a scan folder without scene.json, or a .ply /
.pcd cloud, is run through the geometric extraction (xembody.real.perception.extract) first.

`eval` generates K rooms with known layout, scans each from `--views` views, extracts it,
scores the extraction against the truth, builds the twin and `--n` cousins of each
extracted description with their physical checks (xembody.real.perception.evaluate) and prints
the summary and the results table (`--json`: everything as JSON). Only with `--write-docs`
does it (and `experiment`) replace its section of `--results` (default docs/RESULTS.md).

`experiment` runs the twin-against-cousins policy study (xembody.models.cousins), handing it
the perception step (`scan_and_extract`) that models may not import itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xembody.sim.scenes.description import SceneDescription


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cousins", help="digital twin and cousins of a scanned scene")
    p.add_argument(
        "action", nargs="?", choices=["eval", "experiment"],
        help="eval: score the pipeline; experiment: twin against cousins policy experiment",
    )  # fmt: skip
    p.add_argument("--scan", help="scene.json or a scan folder (build mode)")
    p.add_argument("--n", type=int, help="number of cousins (default: 8; eval: 2 per room)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--out", help="output folder (default: scenes/; eval: out/cousins_eval)")
    p.add_argument("--scenes", type=int, default=8, help="eval: generated rooms (default: 8)")
    p.add_argument("--views", type=int, default=1, help="eval: views per scan (default: 1)")
    p.add_argument("--json", action="store_true", help="eval: print the full result as JSON")
    p.add_argument("--write-docs", action="store_true",
                   help="eval, experiment: write the table into --results")  # fmt: skip
    p.add_argument("--results", default="docs/RESULTS.md",
                   help="eval, experiment: file --write-docs updates (%(default)s)")  # fmt: skip
    p.add_argument("--no-pictures", action="store_true", help="skip cousins.png")
    p.add_argument("--width", type=int, default=400, help="picture width per scene")
    p.add_argument("--height", type=int, default=300, help="picture height per scene")
    p.add_argument("--episodes", type=int, default=100, help="experiment: episodes per cell")
    p.add_argument("--seeds", type=int, default=3, help="experiment: seeds (one room each)")
    p.add_argument("--demos", type=int, default=96, help="experiment: teacher episodes per set")
    p.add_argument("--workers", type=int, default=2, help="experiment: processes")
    p.add_argument("--task", choices=["drawer", "door"], default="drawer",
                   help="experiment: open the top drawer or the first door")  # fmt: skip
    p.set_defaults(run=run)


def load_description(path: str | Path) -> SceneDescription:
    """The SceneDescription at `path`: a JSON file; a scan folder (its scene.json, else the
    geometric extraction run on its RGB-D views); or a .ply / .pcd cloud (extracted)."""
    path = Path(path)
    if path.is_dir() and (path / "scene.json").is_file():
        return SceneDescription.from_json(path / "scene.json")
    if path.is_dir() or path.suffix.lower() in (".ply", ".pcd"):
        from xembody.real.perception.extract import extract_scan

        return extract_scan(path)[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such scene description file or scan folder")
    return SceneDescription.from_json(path)


def run(args: argparse.Namespace) -> int:
    if args.action == "eval":
        return run_eval(args)
    if args.action == "experiment":
        return run_experiment(args)
    from xembody.sim.scenes.cousins import make_cousins, make_twin, manifest_entry

    if not args.scan:
        raise ValueError("cousins: give --scan SCENE_OR_SCAN (or `cousins eval`)")
    args.n = 8 if args.n is None else args.n
    args.out = args.out or "scenes"
    if args.n < 1:
        raise ValueError(f"--n {args.n}: expected at least 1 cousin")
    desc = load_description(args.scan)
    if not desc.objects:
        raise ValueError(f"{args.scan}: the scene description has no objects")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [make_twin(desc, seed=args.seed), *make_cousins(desc, args.n, seed=args.seed)]
    entries = []
    for res in results:
        (out / f"{res.scene.name}.xml").write_text(res.scene.mjcf())
        entries.append({"file": f"{res.scene.name}.xml", **manifest_entry(res)})
        checks = "pass" if res.report.ok else "FAIL"
        print(
            f"{res.scene.name}: {len(res.scene.objects)} objects, distance "
            f"{res.distance:.2f}, checks {checks}, repairs {res.repairs}"
        )
    manifest = {"scan": str(args.scan), "seed": args.seed, "n": args.n, "scenes": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if not args.no_pictures:
        pictures(results, out / "cousins.png", args.width, args.height)
    print(f"wrote {len(results)} scenes, manifest.json to {out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from xembody.real.perception.evaluate import evaluate, results_section, write_results_section

    n = 2 if args.n is None else args.n
    out = args.out or "out/cousins_eval"
    result = evaluate(args.scenes, seed=args.seed, out=out, views=args.views, n_cousins=n)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    command = (f"xembody cousins eval --json --scenes {args.scenes} --seed {args.seed} "
               f"--views {args.views} --n {n} --write-docs")  # fmt: skip
    section = results_section(result, command)
    if args.write_docs:
        write_results_section(section, args.results)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(section)
        s = result["summary"]
        print(f"{s['objects']} objects in {args.scenes} rooms: categories "
              f"{100 * s['category_accuracy']:.0f} %, centre {s['center_error_cm_max']:.1f} cm "
              f"worst, yaw {s['yaw_error_rad_max']:.3f} rad worst, IoU {s['iou_min']:.2f} "
              f"worst, scenes passing checks {s['scenes_passing_pct']:.0f} %; "
              f"targets met: {result['summary']['passed']}")  # fmt: skip
        if args.write_docs:
            print(f"wrote its section of {args.results}")
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    from xembody.models.cousins.experiment import ExperimentConfig, run_experiment
    from xembody.models.cousins.report import results_section
    from xembody.real.perception.evaluate import scan_and_extract, write_results_section

    if args.episodes < 1 or args.seeds < 1 or args.demos < 1 or args.workers < 1:
        raise ValueError(
            f"--episodes {args.episodes} --seeds {args.seeds} --demos {args.demos} --workers "
            f"{args.workers}: expected each at least 1"
        )
    cfg = ExperimentConfig(task=args.task, room_seed=args.seed, episodes=args.episodes,
                           demos=args.demos, seeds=tuple(range(args.seeds)),
                           workers=args.workers)  # fmt: skip
    out = Path(args.out or f"out/cousins_experiment_{args.task}")
    result = run_experiment(cfg, scan_and_extract, out, progress=lambda m: print(m, flush=True))
    (out / "experiment.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    command = (f"xembody cousins experiment --task {args.task} --json --seed {args.seed} "
               f"--seeds {args.seeds} --episodes {args.episodes} --demos {args.demos} "
               "--write-docs")  # fmt: skip
    section = results_section(result, command)
    if args.write_docs:
        write_results_section(section, args.results)
    if args.json:
        print(json.dumps({k: result[k] for k in ("table", "target", "seconds")}, indent=2))
    else:
        print(section)
        t = result["target"]
        print(
            f"8 cousins against the twin on the real scene: {t['real_gain_points']:+.0f} "
            f"points, on the twin {t['twin_gap_points']:+.0f}; target met: {t['met']}"
        )
    return 0


def pictures(results, path: Path, width: int, height: int) -> Path:
    """Twin and cousins side by side, each framed on its objects, four to a row."""
    import mujoco

    from xembody.sim.render import render_grid, render_model, save_png

    images, labels = [], []
    for res in results:
        model = res.scene.spec().compile()
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        images.append(render_model(model, data, width=width, height=height, elevation=-30.0))
        labels.append(f"{res.scene.name} (d={res.distance:.2f})")
    return save_png(render_grid(images, labels, cols=4), path)
