"""Recording throughput: camera streams plus joint state through the dataset's non-blocking
`Recorder` (xembody.real.dataset), in process and through the ROS 2 recorder node, on at
most 2 CPU cores.

    python benchmarks/record_throughput.py --seconds 20            # one run, one JSON line
    python benchmarks/record_throughput.py --sweep [--ros]         # ALOHA's load and up: a table
    python benchmarks/record_throughput.py --chunk-mb 1 2 4     # writer capacity per chunk size

One run (the default: 2 x 640x480 RGB + joint state at 30 Hz, the issue-7 figure; change
it with --cameras, --width, --height, --hz, --joints): the producer offers frames on a
fixed clock, as camera drivers do; pictures of a moving generated arm rendered with MuJoCo
before timing starts (real pictures compress like real pictures; noise would not), cycled.
It prints:

    sustained_hz    frames committed per second of wall time, from the first frame
                    until everything offered is on disk (the writer's lag included)
    dropped         frames the Recorder dropped because its queue was full
    mb_per_s_disk   MB of the store on disk per second of recording
    mb_per_s_raw    uncompressed frame MB per second
    cpu_cores       CPU seconds of this process (producer + writer) per second

`--sweep`: first the writer's capacity against a baseline in the same process (the same
frames written synchronously through `Dataset.add_frame`, and their bytes written raw with
np.save to one file), then paced runs up a ladder of cameras, resolution and rate through
ALOHA's load (50 Hz, 4 x 640x480 rgb8, joint state of a 14-joint body: position,
velocity, effort, command) to the first load not held from there; a load is held when
every offered frame is committed with none dropped and the writer's final lag is under a
second. `--ros` adds the same ladder through ROS: the camera publisher node
(real/ros/camera.py, rgb8 sensor_msgs/Image) -> the recorder node (fps = the camera
rate), joint states published by this process at 100 Hz for the 20-joint humanoid (no
14-joint body class exists), all on a private ROS_DOMAIN_ID, Fast DDS given a 64 MB
shared-memory segment (`--shm-mb`; see FASTDDS_PROFILE). There a load is held when the
recorder's ~/status reports no dropped frame (queue, stale, missing, late) over the
window and a sustained rate (frames written) of at least 98 % of the target (frames still
queued for the writer at the end are not counted); CPU is each node's
process (utime + stime from /proc) per second of the window.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ALOHA = (4, 640, 480, 50.0)  # cameras, width, height, rate
# loads in rising raw MB/s (55, 92, 110, 184, 276, 553); a ladder runs up to ALOHA's load at
# least and stops at its first failure from there
LADDER = [(2, 640, 480, 30.0), (2, 640, 480, 50.0), (4, 640, 480, 30.0), ALOHA,
          (6, 640, 480, 50.0), (4, 1280, 720, 50.0)]  # fmt: skip


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


def features(cameras: int, width: int, height: int, joints: int) -> dict:
    from xembody.real.dataset import Feature

    f = {f"rgb_cam{i}": Feature((height, width, 3), "uint8", image=True) for i in range(cameras)}
    for k in ("joint_pos", "joint_vel", "joint_effort", "command"):
        f[k] = Feature((joints,))
    f["stamp"] = Feature((1,), "float64")
    return f


def frame(k: int, cameras: int, joints: int, views: tuple[list, list]) -> dict:
    n = len(views[0])
    out = {f"rgb_cam{i}": views[i % 2][(k + 3 * i) % n] for i in range(cameras)}
    q = np.sin(0.01 * k + np.arange(joints)).astype(np.float32)
    out.update(joint_pos=q, joint_vel=0.1 * q, joint_effort=0.2 * q, command=q)
    out["stamp"] = np.array([time.time()])
    return out


def run_process(cameras, width, height, hz, seconds, views, joints=14, episode_s=10.0,
                max_queue=256) -> dict:  # fmt: skip
    """Frames offered at `hz` on a fixed clock to a Recorder; what it committed."""
    from xembody.real.dataset import Dataset, Recorder

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zarr"
        ds = Dataset.create(path, features(cameras, width, height, joints), fps=hz)
        rec = Recorder(ds, max_queue=max_queue)
        period, n = 1.0 / hz, int(round(seconds * hz))
        per_episode = int(round(episode_s * hz))
        late = 0
        t0, cpu0 = time.monotonic(), time.process_time()
        for k in range(n):
            due = t0 + k * period
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            elif now - due > period:
                late += 1  # the producer itself fell behind its clock
            rec.add_frame(frame(k, cameras, joints, views))
            if (k + 1) % per_episode == 0:
                rec.end_episode(success=True)
        t_offered = time.monotonic() - t0
        rec.end_episode(success=True)
        rec.close(timeout=300)
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        stats, disk = rec.stats(), ds.disk_bytes()
        committed = Dataset.open(path).num_frames
    return {
        "load": f"{cameras} x {width}x{height} @ {hz:g} Hz", "target_hz": hz,
        "frames_offered": n, "frames_committed": committed, "dropped": stats["dropped"],
        "producer_late_frames": late, "sustained_hz": round(committed / wall, 2),
        "writer_lag_s": round(wall - t_offered, 3),
        "mb_per_s_raw": round(stats["bytes_written"] / wall / 1e6, 1),
        "mb_per_s_disk": round(disk / wall / 1e6, 1),
        "cpu_cores": round(cpu / wall, 2),
        "held": stats["dropped"] == 0 and committed == n and wall - t_offered < 1.0,
    }  # fmt: skip


def capacity(views, cameras=4, width=640, height=480, joints=14, frames=150) -> dict:
    """The writer flat out: `frames` frames through Dataset.add_frame synchronously, and
    the same bytes raw through np.save into one file (page cache, no fsync either way)."""
    from xembody.real.dataset import Dataset

    batch = [frame(k, cameras, joints, views) for k in range(frames)]
    raw = sum(a.nbytes for f in batch for a in f.values())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with open(Path(tmp) / "raw.npy", "wb") as fh:
            for f in batch:
                for a in f.values():
                    np.save(fh, a)
        t_save = time.perf_counter() - t0
        ds = Dataset.create(
            Path(tmp) / "cap.zarr", features(cameras, width, height, joints), fps=50
        )
        t0, cpu0 = time.perf_counter(), time.process_time()
        for f in batch:
            ds.add_frame(f)
        ds.save_episode()
        t_zarr = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        disk = ds.disk_bytes()
    return {
        "load": f"{cameras} x {width}x{height}, {frames} frames",
        "raw_mb": round(raw / 1e6, 1),
        "np_save_mb_per_s": round(raw / t_save / 1e6),
        "writer_mb_per_s": round(raw / t_zarr / 1e6),
        "writer_vs_np_save": round(t_save / t_zarr, 2),
        "writer_frames_per_s": round(frames / t_zarr, 1),
        "writer_cpu_cores": round(cpu / t_zarr, 2),
        "compression": round(raw / disk, 2),
    }  # fmt: skip


# --- through ROS ----------------------------------------------------------------------------
# Fast DDS's shared-memory segment defaults to 0.5 MB: a 640x480 picture (0.9 MB) does not
# fit, is sent as 64 kB UDP fragments, and under load most best-effort pictures lose one
# (measured here: 14 of 30 per second arrived). `--shm-mb` gives every participant a larger
# segment through this profile (FASTDDS_DEFAULT_PROFILES_FILE); 0 keeps the defaults.
FASTDDS_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com"><profiles>
  <transport_descriptors>
    <transport_descriptor><transport_id>shm</transport_id><type>SHM</type>
      <segment_size>{segment}</segment_size></transport_descriptor>
    <transport_descriptor><transport_id>udp</transport_id><type>UDPv4</type>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="xembody_images" is_default_profile="true"><rtps>
    <userTransports><transport_id>shm</transport_id><transport_id>udp</transport_id>
    </userTransports><useBuiltinTransports>false</useBuiltinTransports>
  </rtps></participant>
</profiles></dds>
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_ros(cameras, width, height, hz, seconds, cores, shm_mb=0) -> dict:
    """Camera node -> recorder node over DDS; this process publishes the joint states."""
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS
    from xembody.sim import bodies

    names = list(bodies.sample("humanoid", seed=0).joint_names)
    domain = 5 + (os.getpid() * 7 + int(hz) + cameras * 13 + width) % 90
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE":
           "LOCALHOST", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    size = f"{width}x{height}"
    specs = lambda kind: "[" + ", ".join(  # noqa: E731
        f"'cam{i}:/cam{i}/image_raw:{kind}:{size}'" for i in range(cameras)) + "]"  # fmt: skip
    tmp = tempfile.TemporaryDirectory()
    if shm_mb:
        profile = Path(tmp.name) / "fastdds.xml"
        profile.write_text(FASTDDS_PROFILE.format(segment=int(shm_mb * 2**20)))
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)  # this process too
    log = open(Path(tmp.name) / "nodes.log", "w")  # noqa: SIM115
    mod = lambda n, *p: subprocess.Popen(  # noqa: E731
        ["taskset", "-c", ",".join(map(str, cores)), sys.executable, "-m",
         f"xembody.real.ros.{n}", "--ros-args", *sum((["-p", x] for x in p), [])],
        env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    procs = {
        "camera": mod("camera", f"rate_hz:={hz}", f"cameras:={specs('rgb8')}"),
        "recorder": mod("recorder", "body:=humanoid", f"dataset:={tmp.name}/ros.zarr",
                        f"fps:={hz}", "command_topic:=''", f"cameras:={specs('image')}"),
    }  # fmt: skip
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = Node("bench_joints", context=ctx)
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    status: list[dict] = []
    node.create_subscription(String, "/recorder/status",
                             lambda m: status.append(json.loads(m.data)), COMMAND_QOS)  # fmt: skip
    pub = node.create_publisher(JointState, "/joint_states", SENSOR_QOS)

    def publish() -> None:
        js = JointState(name=names, position=[0.1] * len(names), velocity=[0.0] * len(names))
        js.header.stamp = node.get_clock().now().to_msg()
        pub.publish(js)

    node.create_timer(0.01, publish)
    try:
        end = time.monotonic() + 60
        while not (status and status[-1].get("frames", 0) > hz) and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.01)
        if not status or not status[-1].get("frames"):
            log.flush()
            raise RuntimeError((Path(tmp.name) / "nodes.log").read_text()[-3000:])
        first = status[-1]
        cpu0 = {k: cpu_seconds(p.pid) for k, p in procs.items()}
        t0 = time.monotonic()
        while time.monotonic() < t0 + seconds:
            ex.spin_once(timeout_sec=0.01)
        n_before = len(status)
        while len(status) == n_before:  # the next status after the window
            ex.spin_once(timeout_sec=0.01)
        wall = time.monotonic() - t0
        last = status[-1]
        cpu = {k: (cpu_seconds(p.pid) - cpu0[k]) / wall for k, p in procs.items()}
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGINT)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        log.close()
        tmp.cleanup()
    frames = last["frames"] - first["frames"]
    dropped = {
        k: last[f"dropped_{k}"] - first[f"dropped_{k}"]
        for k in ("queue", "stale", "missing", "late")
    }
    rate = frames / wall
    return {
        "load": f"{cameras} x {width}x{height} @ {hz:g} Hz",
        "target_hz": hz,
        "seconds": round(wall, 1),
        "sustained_hz": round(rate, 2),
        "dropped": dropped,
        "queued_at_end": last["queued"],
        "mb_per_s_raw": round((last["bytes_written"] - first["bytes_written"]) / wall / 1e6, 1),
        "received_hz": {k: round((v - first["received"][k]) / wall, 1)
                        for k, v in last["received"].items()},  # fmt: skip
        "recorder_cpu_cores": round(cpu["recorder"], 2),
        "camera_cpu_cores": round(cpu["camera"], 2),
        "held": sum(dropped.values()) == 0 and rate >= 0.98 * hz,
    }  # fmt: skip


# --- main -----------------------------------------------------------------------------------
def table(rows: list[dict], keys: list[str]) -> str:
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def sweep(args, cores: list[int]) -> None:
    print(f"cores {cores}, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    views = {(w, h): pictures(16, w, h) for w, h in {(c[1], c[2]) for c in LADDER}}
    cap = capacity(views[(640, 480)])
    print("\nwriter capacity (synchronous, same process):")
    print(table([cap], list(cap)), flush=True)
    rows = []
    for cams, w, h, hz in LADDER:
        rows.append(run_process(cams, w, h, hz, args.seconds, views[(w, h)]))
        print(json.dumps(rows[-1]), flush=True)
        if not rows[-1]["held"] and LADDER.index((cams, w, h, hz)) >= LADDER.index(ALOHA):
            break
    keys = ["load", "sustained_hz", "dropped", "writer_lag_s", "mb_per_s_raw", "mb_per_s_disk",
            "cpu_cores", "held"]  # fmt: skip
    print("\nin process (Recorder fed directly):")
    print(table(rows, keys))
    held = [r["load"] for r in rows if r["held"]]
    print(f"highest load held with zero drops: {held[-1] if held else 'none'}")
    if args.ros:
        rows = []
        for cams, w, h, hz in LADDER:
            rows.append(run_ros(cams, w, h, hz, args.seconds, cores, args.shm_mb))
            print(json.dumps(rows[-1]), flush=True)
            if not rows[-1]["held"] and LADDER.index((cams, w, h, hz)) >= LADDER.index(ALOHA):
                break
        keys = ["load", "sustained_hz", "dropped", "queued_at_end", "received_hz", "mb_per_s_raw",
                "recorder_cpu_cores", "camera_cpu_cores", "held"]  # fmt: skip
        print("\nthrough ROS (camera node -> recorder node):")
        print(table(rows, keys))
        held = [r["load"] for r in rows if r["held"]]
        print(f"highest load held with zero drops: {held[-1] if held else 'none'}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def chunk_sizes(sizes_mb: list[float], repeats: int) -> None:
    """`capacity` with the dataset's target chunk size (models.dataset.CHUNK_BYTES) set to
    each of `sizes_mb` in turn, `repeats` rounds interleaved; frames/s per size and round."""
    from xembody.models import dataset

    views = pictures(8, 640, 480)
    rows: dict[float, list[float]] = {mb: [] for mb in sizes_mb}
    saved = dataset.CHUNK_BYTES
    try:
        for _ in range(repeats):
            for mb in sizes_mb:
                dataset.CHUNK_BYTES = int(mb * (1 << 20))
                rows[mb].append(capacity(views)["writer_frames_per_s"])
    finally:
        dataset.CHUNK_BYTES = saved
    for mb, fps in rows.items():
        print(json.dumps({"chunk_mb": mb, "writer_frames_per_s": fps}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="recording time per run")
    p.add_argument("--hz", type=float, default=30.0, help="frame rate offered (default: 30)")
    p.add_argument("--cores", type=int, default=2, help="CPU cores to run on (default: 2)")
    p.add_argument("--cameras", type=int, default=2)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--joints", type=int, default=8)
    p.add_argument("--episode-seconds", type=float, default=10.0, help="episode length")
    p.add_argument("--max-queue", type=int, default=256, help="Recorder queue (frames)")
    p.add_argument("--sweep", action="store_true", help="capacity, then ALOHA's load and up")
    p.add_argument("--ros", action="store_true", help="with --sweep: also through ROS")
    p.add_argument(
        "--chunk-mb",
        type=float,
        nargs="+",
        default=[],
        help="writer capacity (4 x 640x480) per dataset chunk size, MiB, interleaved",
    )
    p.add_argument("--repeats", type=int, default=3, help="with --chunk-mb: rounds")
    p.add_argument("--shm-mb", type=float, default=64.0,
                   help="Fast DDS shared-memory segment, MB (0: Fast DDS's own)")  # fmt: skip
    args = p.parse_args()

    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cores)
    if args.sweep:
        return sweep(args, cores)
    if args.chunk_mb:
        return chunk_sizes(args.chunk_mb, args.repeats)
    views = pictures(30, args.width, args.height)
    result = run_process(args.cameras, args.width, args.height, args.hz, args.seconds, views,
                         args.joints, args.episode_seconds, args.max_queue)  # fmt: skip
    result.update(cores=len(cores), load_average_1m=round(os.getloadavg()[0], 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
