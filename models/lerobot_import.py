"""Read a LeRobotDataset folder (v3.0, local) into an xembody dataset: `import_lerobot`.
The layout and the feature names are described in `models/lerobot_format.py`."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from xembody.models.dataset import Dataset, Feature
from xembody.models.lerobot_format import FRAME_FEATURES, SIDECAR, read_info, xembody_name


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
