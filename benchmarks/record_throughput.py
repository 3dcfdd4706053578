"""Recording throughput: two 640x480 RGB streams plus joint state at 30 Hz through the
dataset's non-blocking `Recorder` (xembody.real.dataset), on at most 2 CPU cores.

The producer offers frames on a fixed 30 Hz clock, as camera drivers do; images are
pictures of a moving generated arm rendered with MuJoCo before timing starts (real
pictures compress like real pictures; noise would not), cycled during the run. Prints
one JSON object:

    sustained_hz      frames committed per second of wall time, from the first frame
                      until everything offered is on disk (the writer's lag included)
    dropped           frames the Recorder dropped because its queue was full
    bytes_per_s_disk  bytes of the store on disk per second of recording
    bytes_per_s_raw   uncompressed frame bytes per second

    python benchmarks/record_throughput.py [--seconds 20] [--hz 30] [--cores 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def pictures(n: int, width: int, height: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """n frames from the scene camera and n from the wrist camera of a moving arm."""
    import mujoco

    from xembody.sim import bodies
    from xembody.sim.render import render_model

    emb = bodies.sample("arm", seed=0)
    model = emb.compile()
    data = mujoco.MjData(model)
    scene, wrist = [], []
    for k in range(n):
        mujoco.mj_resetDataKeyframe(model, data, 0)
        data.qpos[: emb.num_actions - 1] += 0.6 * np.sin(
            2 * np.pi * k / n + np.arange(emb.num_actions - 1)
        )
        mujoco.mj_forward(model, data)
        scene.append(render_model(model, data, width=width, height=height, camera="scene_cam"))
        wrist.append(render_model(model, data, width=width, height=height, camera="wrist_cam"))
    return scene, wrist


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="recording time (default: 20)")
    p.add_argument("--hz", type=float, default=30.0, help="frame rate offered (default: 30)")
    p.add_argument("--cores", type=int, default=2, help="CPU cores to run on (default: 2)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--episode-seconds", type=float, default=10.0, help="episode length")
    p.add_argument("--max-queue", type=int, default=256, help="Recorder queue (frames)")
    p.add_argument("--out", default="", help="dataset path (default: a temporary folder)")
    args = p.parse_args()

    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cores)
    from xembody.real.dataset import Dataset, Feature, Recorder

    scene, wrist = pictures(30, args.width, args.height)
    tmp = tempfile.TemporaryDirectory()
    path = Path(args.out or Path(tmp.name) / "bench.zarr")
    shape = (args.height, args.width, 3)
    features = {
        "rgb_scene": Feature(shape, "uint8", image=True),
        "rgb_wrist": Feature(shape, "uint8", image=True),
        "joint_pos": Feature((8,)),
        "joint_vel": Feature((8,)),
        "action": Feature((7,)),
    }
    ds = Dataset.create(path, features, fps=args.hz, meta={"benchmark": "record_throughput"},
                        overwrite=True)  # fmt: skip
    rec = Recorder(ds, max_queue=args.max_queue)
    period, n = 1.0 / args.hz, int(round(args.seconds * args.hz))
    per_episode = int(round(args.episode_seconds * args.hz))
    late, offered = 0, 0
    t0 = time.monotonic()
    cpu0 = time.process_time()
    for k in range(n):
        due = t0 + k * period
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        elif now - due > period:
            late += 1  # the producer itself fell behind its clock
        q = np.sin(0.01 * k + np.arange(8)).astype(np.float32)
        rec.add_frame({"rgb_scene": scene[k % 30], "rgb_wrist": wrist[k % 30], "joint_pos": q,
                       "joint_vel": 0.1 * q, "action": q[:7]})  # fmt: skip
        offered += 1
        if (k + 1) % per_episode == 0:
            rec.end_episode(success=True)
    t_offered = time.monotonic() - t0
    rec.end_episode(success=True)
    rec.close()
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    stats = rec.stats()
    disk = ds.disk_bytes()
    ds = Dataset.open(path)
    result = {
        "streams": f"2 x RGB {args.width}x{args.height} + joint state",
        "target_hz": args.hz,
        "cores": len(cores),
        "seconds_offered": round(t_offered, 3),
        "frames_offered": offered,
        "frames_committed": ds.num_frames,
        "dropped": stats["dropped"],
        "producer_late_frames": late,
        "sustained_hz": round(ds.num_frames / wall, 2),
        "writer_lag_s": round(wall - t_offered, 3),
        "bytes_per_s_raw": round(stats["bytes_written"] / wall),
        "bytes_per_s_disk": round(disk / wall),
        "compression_ratio": round(stats["bytes_written"] / max(disk, 1), 2),
        "process_cpu_s_per_s": round(cpu / wall, 2),
        "episodes": ds.num_episodes,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    tmp.cleanup()


if __name__ == "__main__":
    main()
