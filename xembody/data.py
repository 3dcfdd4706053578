"""`xembody data`: look at a dataset written by `xembody teleop` (or the ROS 2 recorder), export
it to LeRobot or zarr 2, import a LeRobotDataset.

xembody data info demos.zarr [--json]
xembody data replay demos.zarr --episode 0 --out replay.gif     (or a .png frame strip)
xembody data plot demos.zarr --episode 0 --keys joint_pos ee_pos --out plot.png
xembody data export demos.zarr --format lerobot demos_lerobot      (or --format zarr2 out.zarr)
xembody data import demos_lerobot demos.zarr                        (a LeRobotDataset v3.0 folder)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset info, replay, plots, export, import")
    verbs = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    info = verbs.add_parser("info", help="episodes, frames, features, metadata")
    info.add_argument("path", help="dataset folder (.zarr)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=run_info)

    rep = verbs.add_parser("replay", help="drive the sim with an episode's actions; GIF/PNG")
    rep.add_argument("path", help="dataset folder (.zarr)")
    rep.add_argument("--episode", type=int, default=0, help="episode index (default: 0)")
    rep.add_argument("--out", default="replay.gif", help=".gif animation or .png frame strip")
    rep.add_argument("--fps", type=float, default=10.0, help="pictures per second (default: 10)")
    rep.add_argument("--camera", default="", help="model camera (default: a free camera)")
    rep.add_argument("--width", type=int, default=320, help="picture width (default: 320)")
    rep.add_argument("--height", type=int, default=240, help="picture height (default: 240)")
    rep.set_defaults(run=run_replay)

    plot = verbs.add_parser("plot", help="plot features of an episode over time (PNG)")
    plot.add_argument("path", help="dataset folder (.zarr)")
    plot.add_argument("--episode", type=int, default=0, help="episode index (default: 0)")
    plot.add_argument("--keys", nargs="+", default=["joint_pos", "ee_pos"], help="features")
    plot.add_argument("--out", default="plot.png", help="PNG to write (default: plot.png)")
    plot.set_defaults(run=run_plot)

    ret = verbs.add_parser("retarget", help="retarget an episode's end-effector path to a body")
    ret.add_argument("path", help="dataset folder (.zarr)")
    ret.add_argument("--episode", type=int, default=0, help="episode index (default: 0)")
    ret.add_argument("--to", default="arm", help="body class or MJCF file (default: arm)")
    ret.add_argument("--to-seed", type=int, default=1, help="seed of a sampled body")
    ret.add_argument("--arm", default="", help="humanoid arm: left or right")
    ret.add_argument("--rot", action=argparse.BooleanOptionalAction, default=True,
                     help="follow the orientations too (default: yes; humanoids: no)")  # fmt: skip
    ret.set_defaults(run=run_retarget)

    exp = verbs.add_parser("export", help="write the dataset as a LeRobotDataset or zarr 2")
    exp.add_argument("path", help="dataset folder (.zarr)")
    exp.add_argument("out", help="folder to write")
    exp.add_argument("--format", required=True, choices=sorted(EXPORTS),
                     help="lerobot: LeRobotDataset v3.0; zarr2: zarr format 2")  # fmt: skip
    exp.add_argument("--codec", default="libsvtav1", help="lerobot: video encoder (or libx264)")
    exp.add_argument("--crf", type=int, default=30, help="lerobot: video quality, lower is better")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    exp.set_defaults(run=run_export)

    imp = verbs.add_parser("import", help="read a LeRobotDataset (v3.0, local folder)")
    imp.add_argument("path", help="LeRobotDataset folder (meta/info.json, data/, videos/)")
    imp.add_argument("out", help="dataset folder to write (.zarr)")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    imp.set_defaults(run=run_import)


def _open(path: str):
    from xembody.models.dataset import Dataset

    return Dataset.open(path, mode="r")


def _episode_index(ds, index: int) -> int:
    if not -ds.num_episodes <= index < ds.num_episodes:
        raise ValueError(f"--episode {index}: {ds.path} has {ds.num_episodes} episodes")
    return index % ds.num_episodes


def info(path: str) -> dict:
    from xembody.models.dataset_meta import read_meta

    ds = _open(path)
    lengths = [int(e["length"]) for e in ds.episodes]
    success = [e["success"] for e in ds.episodes if "success" in e]
    stored = read_meta(ds.meta)
    meta = {k: v for k, v in stored.items() if k not in ("body", "task_cfg", "obs_layout")}
    if "body" in stored:
        keys = ("name", "body_class", "source")
        meta["body"] = {k: stored["body"][k] for k in keys if k in stored["body"]}
    if "obs_layout" in stored:
        meta["obs_terms"] = [t["name"] for t in stored["obs_layout"]]
    return {
        "path": str(ds.path),
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "fps": ds.fps,
        "seconds": ds.num_frames / ds.fps,
        "episode_length": {"min": min(lengths, default=0), "max": max(lengths, default=0)},
        "success_rate": sum(success) / len(success) if success else None,
        "disk_bytes": ds.disk_bytes(),
        "features": {
            k: {"shape": list(f.shape), "dtype": f.dtype, "image": f.image}
            for k, f in ds.features.items()
        },  # fmt: skip
        "meta": meta,
    }


def run_info(args: argparse.Namespace) -> int:
    result = info(args.path)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{result['path']}: {result['episodes']} episodes, {result['frames']} frames "
          f"({result['seconds']:.1f} s at {result['fps']:g} fps), "
          f"{result['disk_bytes'] / 1e6:.2f} MB")  # fmt: skip
    if result["success_rate"] is not None:
        print(f"  success: {100 * result['success_rate']:.0f}% of episodes")
    for k, f in result["features"].items():
        print(f"  {k:<16} {f['dtype']:<8} {tuple(f['shape'])}{'  image' if f['image'] else ''}")
    for k, v in result["meta"].items():
        print(f"  meta.{k}: {v}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from PIL import Image

    from xembody.real.teleop.replay import replay_episode
    from xembody.sim.render import render_grid, render_model

    if Path(args.out).suffix not in (".gif", ".png"):
        raise ValueError(f"--out {args.out!r}: expected a .gif or .png file")
    ds = _open(args.path)
    index = _episode_index(ds, args.episode)
    every = max(1, round(ds.fps / args.fps))
    cam = args.camera or None
    result = replay_episode(
        ds, index, every=every,
        render=lambda m, d: render_model(m, d, width=args.width, height=args.height, camera=cam),
    )  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    images = result.frames
    if out.suffix == ".gif":
        pics = [Image.fromarray(f) for f in images]
        pics[0].save(out, save_all=True, append_images=pics[1:], duration=1000 / args.fps, loop=0)
    else:
        pick = np.linspace(0, len(images) - 1, min(8, len(images))).round().astype(int)
        labels = [f"t={result.frame_steps[i] / ds.fps:.1f}s" for i in pick]
        Image.fromarray(render_grid([images[i] for i in pick], labels, cols=4)).save(out)
    print(
        f"episode {index}: {len(result.recorded)} steps replayed, largest joint difference "
        f"from the recording {result.max_error:.2e} rad; {len(images)} pictures -> {out}"
    )
    return 0


def run_plot(args: argparse.Namespace) -> int:
    ds = _open(args.path)
    index = _episode_index(ds, args.episode)
    ep = ds.episode(index)
    for key in args.keys:
        if key not in ep or ds.features[key].image:
            raise ValueError(f"--keys {key!r}: not a numeric feature of {ds.path}")
    image = plot_series({k: ep[k].reshape(len(ep[k]), -1) for k in args.keys}, ds.fps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    print(f"episode {index}: {', '.join(args.keys)} over {len(ep[args.keys[0]])} frames -> {out}")
    return 0


def run_retarget(args: argparse.Namespace) -> int:
    """The episode's commanded end-effector path (ee_target_*), recorded on the dataset's
    body, mapped into the other body's workspace and solved there; prints the errors."""
    from xembody.models.dataset_meta import dataset_body
    from xembody.real.retarget import ArmIK, map_workspace, retarget_trajectory
    from xembody.sim.bodies.reference import resolve_body

    ds = _open(args.path)
    index = _episode_index(ds, args.episode)
    for key in ("ee_target_pos", "ee_target_quat"):
        if key not in ds.features:
            raise ValueError(f"{ds.path}: no {key!r} feature; nothing to retarget")
    ep = ds.episode(index)
    src = ArmIK.for_body(dataset_body(ds.meta))
    dst_body = resolve_body(args.to, args.to_seed)
    dst = ArmIK.for_body(dst_body, args.arm)
    rot = None
    if args.rot and dst.cfg.rot_weight > 0:
        import mujoco

        rot = np.zeros((len(ep["ee_target_quat"]), 9))
        for t, q in enumerate(ep["ee_target_quat"].astype(float)):
            mujoco.mju_quat2Mat(rot[t], q)
        rot = rot.reshape(-1, 3, 3)
    out = retarget_trajectory(dst, map_workspace(ep["ee_target_pos"], src, dst), rot)
    result = {"episode": index, "from": src.emb.name, "to": dst_body.name,
              "joints": list(out.joint_names), **out.summary()}  # fmt: skip
    print(json.dumps(result))
    return 0


def _export_lerobot(args: argparse.Namespace) -> str:
    from xembody.models.lerobot_export import VideoConfig, export_lerobot

    video = VideoConfig(codec=args.codec, crf=args.crf)
    result = export_lerobot(_open(args.path), args.out, video, overwrite=args.overwrite)
    names = ", ".join(f"{k} -> {v}" for k, v in result["features"].items())
    head = f"{result['episodes']} episodes, {result['frames']} frames, {len(result['tasks'])} tasks"
    return f"{head} -> {result['path']} (LeRobot v3.0; {names})"


def _export_zarr2(args: argparse.Namespace) -> str:
    from xembody.models.dataset import export_zarr2

    ds = _open(args.path)
    out = export_zarr2(ds, args.out, overwrite=args.overwrite)
    return f"{ds.num_episodes} episodes, {ds.num_frames} frames -> {out} (zarr format 2)"


EXPORTS = {"lerobot": _export_lerobot, "zarr2": _export_zarr2}


def run_export(args: argparse.Namespace) -> int:
    print(EXPORTS[args.format](args))
    return 0


def run_import(args: argparse.Namespace) -> int:
    from xembody.models.lerobot_import import import_lerobot

    ds = import_lerobot(args.path, args.out, overwrite=args.overwrite)
    print(f"{ds.num_episodes} episodes, {ds.num_frames} frames -> {ds.path}")
    for k, f in ds.features.items():
        print(f"  {k:<16} {f.dtype:<8} {f.shape}{'  image' if f.image else ''}")
    return 0


def plot_series(series: dict[str, np.ndarray], fps: float, width: int = 720, panel_h: int = 180):
    """One panel per key, one coloured line per column; time in s on the x axis (PIL)."""
    from PIL import Image, ImageDraw

    colours = [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    ]  # fmt: skip
    img = Image.new("RGB", (width, panel_h * len(series)), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 60, 10, 20, 20
    for p, (key, y) in enumerate(series.items()):
        y0 = p * panel_h
        lo, hi = float(y.min()), float(y.max())
        hi = hi if hi > lo else lo + 1.0
        box = (left, y0 + top, width - right, y0 + panel_h - bottom)
        draw.rectangle(box, outline=(0, 0, 0))
        draw.text((left, y0 + 4), f"{key}  [{lo:.3g}, {hi:.3g}]", fill=(0, 0, 0))
        draw.text((left, box[3] + 4), f"0 .. {len(y) / fps:.1f} s", fill=(0, 0, 0))
        n = max(len(y) - 1, 1)
        for c in range(y.shape[1]):
            pts = [(box[0] + (box[2] - box[0]) * t / n,
                    box[3] - (box[3] - box[1]) * (float(y[t, c]) - lo) / (hi - lo))
                   for t in range(len(y))]  # fmt: skip
            draw.line(pts, fill=colours[c % len(colours)], width=1)
    return img
