"""`xembody scan`: render RGB-D views of a MuJoCo scene, or extract a scene description.

xembody scan --scene room.xml --views 4 --out scan/    # colour/depth PNGs, intrinsics, poses
xembody scan extract scan/ --out scene.json            # + scene.png (top view with boxes)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="render RGB-D scans of a scene; extract a scene description")
    p.add_argument("action", nargs="*", metavar="extract SCAN",
                   help="extract the scan folder or .ply/.pcd file SCAN")  # fmt: skip
    p.add_argument("--scene", help="MJCF file to render (render mode)")
    p.add_argument("--views", type=int, default=4, help="number of views (default: 4)")
    p.add_argument("--out", help="scan folder to write (render) or scene.json (extract)")
    p.add_argument("--width", type=int, default=320, help="image width (default: 320)")
    p.add_argument("--height", type=int, default=240, help="image height (default: 240)")
    p.add_argument("--noise", type=float, default=0.0, help="depth noise std at 1 m, m")
    p.add_argument("--dropout", type=float, default=0.0, help="fraction of pixels dropped")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action:
        if args.action[0] != "extract" or len(args.action) != 2:
            raise ValueError(f"scan {' '.join(args.action)}: expected `scan extract SCAN`")
        return run_extract(Path(args.action[1]), Path(args.out or "scene.json"))
    if not args.scene or not args.out:
        raise ValueError("scan: give --scene MJCF and --out FOLDER (or `scan extract SCAN`)")
    from xembody.real.perception.scan import ScanConfig, render_scan

    cfg = ScanConfig(views=args.views, width=args.width, height=args.height,
                     noise_std=args.noise, dropout=args.dropout, seed=args.seed)  # fmt: skip
    out = render_scan(args.scene, args.out, cfg)
    print(f"wrote {cfg.views} RGB-D views of {args.scene} to {out}/")
    return 0


def run_extract(scan: Path, out: Path) -> int:
    from xembody.real.perception.extract import draw_top_view, extract_scan

    desc, groups, points = extract_scan(scan)
    out.parent.mkdir(parents=True, exist_ok=True)
    desc.to_json(out)
    picture = out.with_suffix(".png")
    draw_top_view(desc, groups, points, picture)
    for o in desc.objects:
        print(f"{o.id:>6} {o.category:<8} conf {o.confidence:.2f} centre "
              f"({o.center[0]:.2f}, {o.center[1]:.2f}, {o.center[2]:.2f}) size "
              f"({o.size[0]:.2f}, {o.size[1]:.2f}, {o.size[2]:.2f}) yaw {o.yaw:.2f} "
              f"{' '.join(o.relations)}")  # fmt: skip
    print(f"wrote {out} and {picture} ({len(desc.objects)} objects, {len(desc.walls)} walls)")
    return 0
