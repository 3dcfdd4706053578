"""Write an xembody dataset as a LeRobotDataset (v3.0): `export_lerobot`. The layout, the
feature names and the sidecar are described in `models/lerobot_format.py`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from xembody.models.dataset import FORMAT, Dataset, built_in_place
from xembody.models.dataset_meta import read_meta
from xembody.models.lerobot_format import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES_PATH,
    FRAME_FEATURES,
    SIDECAR,
    VIDEO_PATH,
    lerobot_name,
)

DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
_NAMES = {
    "ee_pos": ["x", "y", "z"],
    "ee_target_pos": ["x", "y", "z"],
    "ee_quat": ["w", "x", "y", "z"],
    "ee_target_quat": ["w", "x", "y", "z"],
    "cmd_twist": ["vx", "vy", "vz", "wx", "wy", "wz"],
    "cmd_gripper": ["open"],
}


@dataclass(frozen=True, kw_only=True)
class VideoConfig:
    """How camera images are encoded (PyAV). The defaults are LeRobot's own."""

    codec: str = "libsvtav1"  # or "libx264"
    crf: int = 30  # quality: lower is better and larger
    gop: int = 2  # a key frame every `gop` frames: cheap random access
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        import av

        if self.codec not in av.codecs_available:
            raise ValueError(f"VideoConfig.codec {self.codec!r}: PyAV here has no such encoder")
        if not 0 <= self.crf <= 63:
            raise ValueError(f"VideoConfig.crf {self.crf}: expected 0..63")
        if self.gop < 1:
            raise ValueError(f"VideoConfig.gop {self.gop}: expected >= 1")

    def options(self) -> dict[str, str]:
        opts = {"g": str(self.gop), "crf": str(self.crf)}
        return opts | ({"preset": "12"} if self.codec == "libsvtav1" else {})


def export_lerobot(
    ds: Dataset, out: str | Path, video: VideoConfig | None = None, *, overwrite: bool = False
) -> dict[str, Any]:
    """Write `ds` as a LeRobotDataset (v3.0) folder `out`; returns a summary. The folder is
    built beside `out` and renamed into place at the end, so a failed export leaves nothing."""
    video = video or VideoConfig()
    out = Path(out)
    fps = _integer_fps(ds.fps, ds.path)
    names = _check_exportable(ds)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite to replace it")
    with built_in_place(out) as tmp:
        tasks = _write(ds, tmp, names, fps, video)
    return {"path": str(out), "episodes": ds.num_episodes, "frames": ds.num_frames,
            "tasks": tasks, "features": names, "codec": video.codec}  # fmt: skip


def _write(ds: Dataset, tmp: Path, names: dict[str, str], fps: int, video: VideoConfig) -> list:
    """The whole export into the folder `tmp`; returns the tasks in task_index order."""
    import pyarrow as pa

    (tmp / "meta").mkdir(parents=True)
    meta = read_meta(ds.meta)
    tasks = _episode_tasks(ds, meta)
    task_index = {t: i for i, t in enumerate(dict.fromkeys(tasks))}
    cams = [k for k, f in ds.features.items() if f.image]
    videos = {k: _VideoFiles(tmp, names[k], fps, video) for k in cams}
    data = _DataFiles(tmp)
    rows, ep_stats = [], []
    for e in range(ds.num_episodes):
        ep = ds.episode(e)
        sl = ds.episode_slice(e)
        n = sl.stop - sl.start
        frames = {names[k]: v for k, v in ep.items() if not ds.features[k].image}
        frame_index = np.arange(n, dtype=np.int64)
        frames |= {
            "timestamp": (frame_index / fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(n, e, dtype=np.int64),
            "index": np.arange(sl.start, sl.stop, dtype=np.int64),
            "task_index": np.full(n, task_index[tasks[e]], dtype=np.int64),
        }
        row = {"episode_index": e, "tasks": [tasks[e]], "length": n}
        row |= data.add_episode(frames, sl.start)
        for k in cams:
            row |= videos[k].add_episode(ep[k])
        row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        stats = {names[k]: _stats(ep[k], ds.features[k].image) for k in cams}
        stats |= {name: _stats(v, False) for name, v in frames.items()}
        row |= {f"stats/{f}/{s}": v.tolist() for f, st in stats.items() for s, v in st.items()}
        rows.append(row)
        ep_stats.append(stats)
    data.close()
    for v in videos.values():
        v.close()
    episodes = pa.Table.from_pylist(rows)
    _write_parquet(episodes, tmp / EPISODES_PATH.format(chunk_index=0, file_index=0))
    _write_tasks(tmp / "meta/tasks.parquet", list(task_index))
    features = _lerobot_features(ds, names, meta, fps, video)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": (meta.get("body") or {}).get("name"),
        "total_episodes": ds.num_episodes,
        "total_frames": ds.num_frames,
        "total_tasks": len(task_index),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": VIDEO_FILE_MB,
        "fps": fps,
        "splits": {"train": f"0:{ds.num_episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cams else None,
        "features": features,
    }
    _write_json(tmp / "meta/info.json", info)
    stats = {f: {s: v.tolist() for s, v in st.items()} for f, st in _aggregate(ep_stats).items()}
    _write_json(tmp / "meta/stats.json", stats)
    sidecar = {
        "format": FORMAT,
        "fps": ds.fps,
        "meta": ds.meta,
        "episodes": ds.episodes,
        "features": {
            names[k]: {"key": k, "shape": list(f.shape), "dtype": f.dtype, "image": f.image}
            for k, f in ds.features.items()
        },
    }
    _write_json(tmp / SIDECAR, sidecar)
    return list(task_index)


def _integer_fps(fps: float, where: Any) -> int:
    if fps != round(fps):
        raise ValueError(f"{where}: fps {fps:g}; LeRobot stores an integer frame rate")
    return int(round(fps))


def _check_exportable(ds: Dataset) -> dict[str, str]:
    """Each feature's LeRobot name; raises on a shape or name LeRobot cannot hold."""
    names: dict[str, str] = {}
    for key, f in ds.features.items():
        if f.image and (len(f.shape) != 3 or f.shape[2] != 3 or f.shape[0] % 2 or f.shape[1] % 2):
            raise ValueError(
                f"{ds.path}: image feature {key!r} has shape {f.shape}; exported as video it "
                "must be (H, W, 3) with even H and W"
            )
        if not f.image and len(f.shape) > 1:
            raise ValueError(
                f"{ds.path}: feature {key!r} has shape {f.shape}; only scalars and vectors export"
            )
        name = lerobot_name(key, f)
        clash = next((k for k, n in names.items() if n == name), None)
        if clash is not None:
            raise ValueError(f"{ds.path}: features {clash!r} and {key!r} would both be {name!r}")
        names[key] = name
    return names


def _episode_tasks(ds: Dataset, meta: dict[str, Any]) -> list[str]:
    fallback = meta["task"] if isinstance(meta.get("task"), str) else "unknown"
    return [ep["task"] if isinstance(ep.get("task"), str) else fallback for ep in ds.episodes]


def _vector_names(key: str, size: int, meta: dict[str, Any]) -> list[str]:
    """Element names: joints from the body, actions from "action_joint_names", policy
    observations from "obs_layout" (term_0, term_1, ...), fixed ones (_NAMES), else key_i."""
    known = _NAMES.get(key)
    if key in ("joint_pos", "joint_vel"):
        known = [j.get("name") for j in (meta.get("body") or {}).get("joints", [])]
    if key == "action":
        known = list(meta.get("action_joint_names") or [])
    if key == "obs" and all("size" in t for t in meta.get("obs_layout", [])):
        known = [f"{t['name']}_{i}" for t in meta.get("obs_layout", []) for i in range(t["size"])]
    if known is not None and len(known) == size and all(isinstance(n, str) for n in known):
        return known
    return [f"{key}_{i}" for i in range(size)]


def _lerobot_features(
    ds: Dataset, names: dict[str, str], meta: dict[str, Any], fps: int, video: VideoConfig
) -> dict[str, Any]:
    import av

    features: dict[str, Any] = {}
    for key, f in ds.features.items():
        if f.image:
            features[names[key]] = {
                "dtype": "video",
                "shape": list(f.shape),
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": f.shape[0],
                    "video.width": f.shape[1],
                    "video.codec": av.codec.Codec(video.codec, "w").canonical_name,
                    "video.pix_fmt": video.pix_fmt,
                    "video.is_depth_map": False,
                    "video.fps": fps,
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
        else:
            size = int(np.prod(f.shape))
            features[names[key]] = {
                "dtype": f.dtype,
                "shape": [size],
                "names": _vector_names(key, size, meta),
            }
    for name, dtype in FRAME_FEATURES.items():
        features[name] = {"dtype": dtype, "shape": [1], "names": None}
    return features


class _DataFiles:
    """The frame parquet files: episodes appended to the current file until it holds
    DATA_FILE_MB (raw bytes), then the next file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = 0
        self.bytes = 0
        self.writer = None

    def add_episode(self, frames: dict[str, np.ndarray], start: int) -> dict[str, int]:
        import pyarrow.parquet as pq

        table = _frame_table(frames)
        if self.writer is not None and self.bytes + table.nbytes > DATA_FILE_MB << 20:
            self.close()
            self.file += 1
        if self.writer is None:
            path = self.root / DATA_PATH.format(**_chunk_file(self.file))
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            self.bytes = 0
        self.writer.write_table(table)
        self.bytes += table.nbytes
        n = len(frames["index"])
        return {**{f"data/{k}": v for k, v in _chunk_file(self.file).items()},
                "dataset_from_index": start, "dataset_to_index": start + n}  # fmt: skip

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _VideoFiles:
    """One camera's mp4 files: episodes appended to the current stream (frame n of the file
    at n / fps) until it holds VIDEO_FILE_MB, then the next file."""

    def __init__(self, root: Path, key: str, fps: int, cfg: VideoConfig) -> None:
        self.root, self.key, self.fps, self.cfg = root, key, fps, cfg
        self.file = 0
        self.container = None
        self.stream = None
        self.frames = 0  # frames in the current file
        self.bytes = 0

    def add_episode(self, images: np.ndarray) -> dict[str, Any]:
        import av

        if self.container is not None and self.bytes >= VIDEO_FILE_MB << 20:
            self.close()
            self.file += 1
        if self.container is None:
            path = self.root / VIDEO_PATH.format(video_key=self.key, **_chunk_file(self.file))
            path.parent.mkdir(parents=True, exist_ok=True)
            self.container = av.open(str(path), "w")
            self.stream = self.container.add_stream(
                self.cfg.codec, rate=self.fps, options=self.cfg.options()
            )
            self.stream.height, self.stream.width = images.shape[1:3]
            self.stream.pix_fmt = self.cfg.pix_fmt
            self.stream.time_base = Fraction(1, self.fps)
            self.frames = self.bytes = 0
        start = self.frames
        for img in images:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = self.frames
            frame.time_base = Fraction(1, self.fps)
            self._mux(self.stream.encode(frame))
            self.frames += 1
        prefix = f"videos/{self.key}/"
        return {**{prefix + k: v for k, v in _chunk_file(self.file).items()},
                prefix + "from_timestamp": start / self.fps,
                prefix + "to_timestamp": self.frames / self.fps}  # fmt: skip

    def _mux(self, packets: list) -> None:
        for p in packets:
            self.bytes += p.size
            self.container.mux(p)

    def close(self) -> None:
        if self.container is not None:
            self._mux(self.stream.encode())
            self.container.close()
            self.container = None


def _chunk_file(n: int) -> dict[str, int]:
    return {"chunk_index": n // CHUNKS_SIZE, "file_index": n % CHUNKS_SIZE}


def _frame_table(frames: dict[str, np.ndarray]):
    """(T, ...) arrays as an Arrow table: scalars as columns, vectors as fixed-size lists."""
    import pyarrow as pa

    cols = {}
    for name, v in frames.items():
        flat = v.reshape(len(v), -1)
        if flat.shape[1] == 1:
            cols[name] = pa.array(flat[:, 0])
        else:
            cols[name] = pa.FixedSizeListArray.from_arrays(
                pa.array(flat.reshape(-1)), flat.shape[1]
            )
    return pa.table(cols)


def _stats(x: np.ndarray, image: bool) -> dict[str, np.ndarray]:
    """LeRobot's statistics of one episode of one feature: per vector element, or per image
    channel in [0, 1] shaped (3, 1, 1) (images: at most ~100 frames, evenly spaced)."""
    if image:
        x = x[:: max(1, len(x) // 100)].reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    else:
        x = x.reshape(len(x), -1).astype(np.float64)
    out = {
        "min": x.min(0),
        "max": x.max(0),
        "mean": x.mean(0),
        "std": x.std(0),
        "count": np.array([len(x)]),
    }
    out |= {f"q{round(q * 100):02d}": np.quantile(x, q, axis=0) for q in QUANTILES}
    if image:
        out = {k: v if k == "count" else v.reshape(-1, 1, 1) for k, v in out.items()}
    return out


def _aggregate(episodes: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict]:
    """Dataset statistics from episode statistics, as LeRobot aggregates them: count-weighted
    means (quantiles too), pooled variance, extreme min and max."""
    out = {}
    for name in episodes[0] if episodes else []:
        st = [e[name] for e in episodes]
        w = np.array([s["count"][0] for s in st], dtype=np.float64)
        wn = (w / w.sum()).reshape(-1, *([1] * st[0]["mean"].ndim))
        means = np.stack([s["mean"] for s in st])
        mean = (wn * means).sum(0)
        var = (wn * (np.stack([s["std"] for s in st]) ** 2 + (means - mean) ** 2)).sum(0)
        agg = {
            "min": np.min([s["min"] for s in st], axis=0),
            "max": np.max([s["max"] for s in st], axis=0),
            "mean": mean,
            "std": np.sqrt(var),
            "count": np.array([int(w.sum())]),
        }
        for q in QUANTILES:
            key = f"q{round(q * 100):02d}"
            agg[key] = (wn * np.stack([s[key] for s in st])).sum(0)
        out[name] = agg
    return out


def _write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as pandas writes a frame indexed by the task string (LeRobot reads
    it with pandas: `tasks.loc[task].task_index`, `tasks.iloc[i].name`)."""
    import pyarrow as pa

    columns = [("task_index", "int64", "int64"), ("task", "unicode", "object")]
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {"name": c, "field_name": c, "pandas_type": p, "numpy_type": t, "metadata": None}
            for c, p, t in columns
        ],
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": tasks})
    table = table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
    _write_parquet(table, path)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
