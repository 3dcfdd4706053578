"""LeRobot interop: write an xembody dataset as a LeRobotDataset and read one back.

The LeRobotDataset layout written and read here is codebase version "v3.0" (lerobot 0.4.x):

    out/
      meta/info.json                     codebase_version, fps, totals, path templates, features
      meta/stats.json                    per feature: min, max, mean, std, count, q01 .. q99
      meta/tasks.parquet                 one row per task: task (the pandas index), task_index
      meta/episodes/chunk-000/file-000.parquet
                                         one row per episode: episode_index, tasks, length,
                                         dataset_from_index/_to_index (global frame range),
                                         data/chunk_index, data/file_index, per camera
                                         videos/<key>/{chunk_index, file_index, from_timestamp,
                                         to_timestamp}, stats/<feature>/<stat>
      meta/xembody.json                  what LeRobot has no place for (below); LeRobot ignores it
      data/chunk-XXX/file-XXX.parquet    frames, episodes in order, a file never splits one
      videos/<key>/chunk-XXX/file-XXX.mp4
                                         one stream per camera, episodes back to back: frame t
                                         of an episode is at its from_timestamp + t / fps

Files roll over at 100 MB (data) and 200 MB (video), 1000 files to a chunk, as LeRobot's own.
The export holds one episode in memory at a time.

Feature names (`lerobot_name`): `joint_pos` -> `observation.state`, `action` -> `action`, an
image `rgb_<camera>` -> `observation.images.<camera>` (another image `k` ->
`observation.images.k`), any other feature `k` -> `observation.k`. Per frame LeRobot adds
`timestamp` (frame_index / fps, float32), `frame_index`, `episode_index`, `index` (global) and
`task_index` (int64). Values keep their dtype; a feature of shape () or (1,) is a scalar column.

Images are encoded lossy, as LeRobot records them: `VideoConfig` (default libsvtav1, yuv420p,
crf 30, a key frame every 2 frames). Every number survives exactly; images come back within a
few grey levels (tests/test_lerobot.py states and checks the bound).

Tasks: LeRobot wants a task string per frame. An episode's task is its own "task" metadata,
else the dataset meta's "task", else "unknown".

meta/xembody.json holds the xembody side whole: format, fps, dataset meta, episode records and
each feature's xembody key, shape and dtype, so that `import_lerobot(export_lerobot(ds))` gives
back the same dataset (images within the codec's error). A LeRobotDataset from elsewhere has no
such file: its features are named back by `xembody_name`, its episodes carry their task.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from xembody.models.dataset import FORMAT, Dataset, Feature, built_in_place
from xembody.models.dataset_meta import read_meta

CODEBASE_VERSION = "v3.0"
SUPPORTED_VERSIONS = ("v3.0",)
CHUNKS_SIZE = 1000  # files per chunk folder
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
SIDECAR = "meta/xembody.json"
FRAME_FEATURES = {  # added to every frame, in LeRobot's order
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
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


def lerobot_name(key: str, feature: Feature) -> str:
    """The LeRobot feature name of xembody feature `key` (the module docstring's table)."""
    if feature.image:
        return "observation.images." + key.removeprefix("rgb_")
    return {"joint_pos": "observation.state", "action": "action"}.get(key, "observation." + key)


def xembody_name(name: str, dtype: str) -> str:
    """The xembody feature key of LeRobot feature `name` (inverse of `lerobot_name`)."""
    if name == "observation.state":
        return "joint_pos"
    if name.startswith("observation.images.") and dtype in ("video", "image"):
        return "rgb_" + name.removeprefix("observation.images.")
    return name.removeprefix("observation.").replace("/", "_")


# --- export ------------------------------------------------------------------------------
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


# --- import ------------------------------------------------------------------------------
def read_info(root: str | Path) -> dict[str, Any]:
    """meta/info.json of a LeRobotDataset folder, checked: a supported codebase version and
    the keys this reader needs. Errors name the file and what was expected."""
    path = Path(root) / "meta" / "info.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; expected a LeRobotDataset {CODEBASE_VERSION} folder "
            "(meta/info.json, meta/episodes/, meta/tasks.parquet, data/)"
        )
    info = json.loads(path.read_text())
    version = info.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"{path}: codebase_version {version!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_VERSIONS)} (lerobot converts v2.1 datasets with "
            "lerobot.datasets.v30.convert_dataset_v21_to_v30)"
        )
    missing = [k for k in ("fps", "features", "data_path", "total_episodes") if k not in info]
    if missing:
        raise ValueError(f"{path}: missing {missing}; a {version} info.json has them")
    return info


def import_lerobot(src: str | Path, out: str | Path, *, overwrite: bool = False) -> Dataset:
    """Read the LeRobotDataset folder `src` (v3.0, local) into a new xembody dataset `out`.
    On any error `out` is removed again: no half-imported dataset is left behind."""
    src = Path(src)
    info = read_info(src)
    sidecar_path = src / SIDECAR
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else None
    mapping = _import_features(info, sidecar)
    episodes = _read_parquets(sorted((src / "meta/episodes").glob("*/*.parquet")))
    if len(episodes.get("episode_index", [])) != info["total_episodes"]:
        raise ValueError(
            f"{src}/meta/episodes: {len(episodes.get('episode_index', []))} episode rows, "
            f"info.json says total_episodes={info['total_episodes']}"
        )
    tasks = _read_tasks(src / "meta/tasks.parquet")
    features = {key: f for key, (_, f) in mapping.items()}
    fps = sidecar["fps"] if sidecar else float(info["fps"])
    origin = {k: info.get(k) for k in ("codebase_version", "robot_type")} | {"source": str(src)}
    meta = sidecar["meta"] if sidecar else {"lerobot": origin}
    ds = Dataset.create(out, features, fps=fps, meta=meta, overwrite=overwrite)
    reader = _FrameReader(src, info, mapping)
    try:
        for row in np.argsort(episodes["episode_index"]):
            ep = {k: v[row] for k, v in episodes.items()}
            values, task_index = reader.episode(ep)
            for t in range(int(ep["length"])):
                ds.add_frame({k: v[t] for k, v in values.items()})
            if sidecar is not None:  # our own export: the episode record as it was
                record = sidecar["episodes"][int(ep["episode_index"])]
                skip = ("index", "start", "end", "length")
                ds.save_episode(**{k: v for k, v in record.items() if k not in skip})
            else:
                names = [tasks[int(i)] for i in np.unique(task_index)]
                ds.save_episode(task=names[0] if len(names) == 1 else names)
    except BaseException:
        shutil.rmtree(ds.path, ignore_errors=True)
        raise
    return ds


class _FrameReader:
    """The frames of one episode at a time, every feature as (length, *shape), from the
    data files (each read once while its episodes are read) and the video files."""

    def __init__(self, src: Path, info: dict, mapping: dict[str, tuple[str, Feature]]) -> None:
        self.src, self.info, self.mapping = src, info, mapping
        self.path: Path | None = None
        self.table = None

    def episode(self, ep: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """({key: values}, per-frame task_index) of the episode row `ep` of meta/episodes."""
        import pyarrow.parquet as pq

        path = self.src / self.info["data_path"].format(
            chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"]
        )
        if path != self.path:
            self.table, self.path = pq.read_table(path), path
        index = self.table.column("index").to_numpy()
        rows = np.flatnonzero(
            (index >= ep["dataset_from_index"]) & (index < ep["dataset_to_index"])
        )
        n = int(ep["length"])
        if len(rows) != n:
            raise ValueError(
                f"{path}: episode {ep['episode_index']} has {len(rows)} rows, its "
                f"meta/episodes length is {n}"
            )
        part = self.table.take(rows)
        values = {}
        for key, (name, f) in self.mapping.items():
            dtype = self.info["features"][name]["dtype"]
            if dtype == "video":
                values[key] = _decode_episode(self.src, self.info, ep, name, n)
            elif dtype == "image":
                values[key] = _decode_images(part.column(name).to_pylist())
            else:
                values[key] = _column_values(part.column(name), n, f)
        return values, part.column("task_index").to_numpy()


def _import_features(info: dict, sidecar: dict | None) -> dict[str, tuple[str, Feature]]:
    """xembody key -> (LeRobot name, Feature) for every LeRobot feature but the per-frame
    bookkeeping ones and strings."""
    out = {}
    for name, ft in info["features"].items():
        if name in FRAME_FEATURES or ft["dtype"] == "string":
            continue
        side = (sidecar or {}).get("features", {}).get(name)
        if side is not None:
            out[side["key"]] = (name, Feature(tuple(side["shape"]), side["dtype"], side["image"]))
        else:
            image = ft["dtype"] in ("video", "image")
            dtype = "uint8" if image else ft["dtype"]
            out[xembody_name(name, ft["dtype"])] = (name, Feature(tuple(ft["shape"]), dtype, image))
    return out


def _read_parquets(paths: list[Path]) -> dict[str, list]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not paths:
        return {}
    table = pa.concat_tables([pq.read_table(p) for p in paths], promote_options="default")
    return table.select([c for c in table.column_names if not c.startswith("stats/")]).to_pydict()


def _read_tasks(path: Path) -> dict[int, str]:
    """task_index -> task string (the task is the pandas index column, whatever its name)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path).to_pydict()
    text = [k for k, v in table.items() if k != "task_index" and v and isinstance(v[0], str)]
    if "task_index" not in table or not text:
        raise ValueError(f"{path}: expected a task_index column and a task string column")
    return dict(zip(table["task_index"], table[text[0]], strict=True))


def _column_values(column, n: int, f: Feature) -> np.ndarray:
    import pyarrow as pa

    column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        values = np.asarray(column.flatten().to_numpy(zero_copy_only=False))
    else:
        values = column.to_numpy(zero_copy_only=False)
    return values.astype(f.dtype).reshape(n, *f.shape)


def _decode_images(cells: list[dict]) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB")) for c in cells])


def _decode_episode(src: Path, info: dict, ep: dict, name: str, n: int) -> np.ndarray:
    """The episode's n frames of camera `name`: frames of its video file whose time lies in
    [from_timestamp, to_timestamp), in order (frame t at from_timestamp + t / fps)."""
    import av

    prefix = f"videos/{name}/"
    path = src / info["video_path"].format(
        video_key=name, chunk_index=ep[prefix + "chunk_index"], file_index=ep[prefix + "file_index"]
    )
    t0, t1 = float(ep[prefix + "from_timestamp"]), float(ep[prefix + "to_timestamp"])
    half = 0.5 / float(info["fps"])
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(max(0.0, t0 - half) / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t < t0 - half:
                continue
            if t >= t1 - half:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    if len(frames) != n:
        raise ValueError(
            f"{path}: {len(frames)} frames between {t0:.3f} s and {t1:.3f} s, expected {n} "
            f"(episode {ep['episode_index']})"
        )
    return np.stack(frames)
