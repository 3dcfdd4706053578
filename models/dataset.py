"""The xembody dataset: episodes of robot data in a zarr v3 store.

Layout (format "xembody-dataset/1", the layout of diffusion-policy style replay buffers):

    demos.zarr/
      zarr.json           root attributes: format, features, fps, dataset meta, and the list of
                          committed episodes (start, end, length, per-episode metadata)
      data/<key>          one array per feature, time-major (T, *shape), chunked along time,
                          compressed (Blosc: zstd for numbers, lz4 for images)
      meta/episode_ends   (num_episodes,) int64, cumulative end of each episode

Crash safety (one writer at a time; any process may be killed at any instant, SIGKILL too).
The root attributes are the truth: their list of committed episodes is rewritten atomically
(zarr writes a temporary file and renames it) by `save_episode`, and that rewrite is the
commit point. Frames of the episode in flight are written past the committed end of the
arrays first, and every chunk file is replaced atomically, so a reader sees an episode only
once it is complete, a kill loses at most the episode in flight, and committed frames stay
byte-identical. The rest is derived from the commit point, and repaired from it:
`episode_ends` (and every boundary a `Dataset` returns) comes from the committed list on
every open, read-only included, so a stale or half-written `meta/episode_ends` on disk (a
kill right after the commit) is never read; opening for appending rewrites it, cuts the
arrays back to the committed end, and removes the leftovers of killed writes (zarr's
`*.partial` temporary files, chunk files past the end). `create` builds the store in a
hidden sibling folder (`.<name>.creating-<pid>-<hex>`) and renames it into place, so a
path holds a whole dataset or nothing; the folders of killed creates (and of killed
`overwrite` replacements, `.<name>.replaced-...`) are removed by the next `create` or
append open of that path. A store that an older xembody's `create` was killed in (no
format attribute, no frames) is replaced by `create` and `open_or_create`. A test may set
`_crash_hook` to kill the process at the named points of these steps (tests/
test_dataset_crash.py).

zarr 2 (diffusion_policy's ReplayBuffer pins zarr 2.18, which cannot read v3 stores):
`export_zarr2` copies the committed episodes into a zarr format 2 store of the same layout
(`data/<key>`, `meta/episode_ends`; numcodecs Blosc), which `Dataset.open` reads too
(read-only).

The dataset meta schema (`write_meta`, `read_meta`, `dataset_body`, `robot_identity`) is in
`xembody.models.dataset_meta`; `Recorder`, the writer thread in front of a dataset, is in
`xembody.models.recorder`.

This module lives under `models` because training reads datasets (behaviour cloning,
dynamics fitting) and the recorders in `real` write them; `real` may import `models`,
never the other way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # zarr is imported where a store is opened: `xembody train` needs none
    import zarr

FORMAT = "xembody-dataset/1"
FLUSH_BYTES = 16 << 20  # write the frames in flight once this much is buffered
CHUNK_BYTES = 1 << 20  # target chunk size along time
_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.partial$")  # zarr's temporary file of an atomic write

# Crash tests set this (in a child process) to a function of the point's name that kills the
# process there: "create" (store built, not yet renamed into place), "commit" (root attributes
# rewritten, meta/episode_ends not yet), "ends" (meta/episode_ends resized, not yet written).
_crash_hook: Callable[[str], None] | None = None


def _at(point: str) -> None:
    if _crash_hook is not None:
        _crash_hook(point)


@dataclass(frozen=True)
class Feature:
    """One recorded quantity per frame: its shape, dtype, and whether it is a camera image
    ((H, W, 3) or (H, W) uint8)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    image: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"Feature shape {self.shape}: every size must be positive")
        try:
            np.dtype(self.dtype)
        except TypeError:
            raise ValueError(f"Feature dtype {self.dtype!r} is not a numpy dtype") from None
        if self.image and (self.dtype != "uint8" or len(self.shape) not in (2, 3)):
            raise ValueError(
                f"image Feature: expected uint8 (H, W[, C]), got {self.dtype} {self.shape}"
            )

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    @property
    def chunk_len(self) -> int:
        return int(max(1, min(4096, CHUNK_BYTES // self.frame_bytes)))


def _features_from_json(raw: dict[str, Any]) -> dict[str, Feature]:
    return {
        k: Feature(tuple(v["shape"]), v["dtype"], bool(v.get("image", False)))
        for k, v in raw.items()
    }


def _temp_sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_siblings(path: Path) -> None:
    """Remove the temporary folders that killed creates, exports and overwrites of `path` left
    next to it (those of live processes stay)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(creating|replaced)-(\d+)-[0-9a-f]{{8}}")
    if not path.parent.is_dir():
        return
    for p in path.parent.iterdir():
        m = pattern.fullmatch(p.name)
        if m and int(m[2]) != os.getpid() and not _pid_alive(int(m[2])):
            shutil.rmtree(p, ignore_errors=True)


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished store `tmp` to `path`, replacing what is there."""
    if path.exists() or path.is_symlink():
        old = _temp_sibling(path, "replaced")
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    else:
        os.rename(tmp, path)


@contextmanager
def built_in_place(path: Path) -> Iterator[Path]:
    """A hidden sibling folder of `path` to build a store (or any folder) in: renamed to
    `path` when the block ends, replacing what is there, and removed if the block raises, so
    `path` holds the whole result or what it held before. Leftovers of killed builds of
    `path` are swept first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_siblings(path)
    tmp = _temp_sibling(path, "creating")
    try:
        yield tmp
        _at("create")
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unfinished(path: Path) -> bool:
    """Whether `path` is a folder holding nothing a dataset could lose: no file but zarr
    metadata (what an older xembody's killed `create` left), and no format attribute."""
    if not path.is_dir() or path.is_symlink():
        return False
    root = path / "zarr.json"
    if root.is_file():
        try:
            if "format" in json.loads(root.read_text()).get("attributes", {}):
                return False
        except (ValueError, AttributeError):
            return False
    files = (p for p in path.rglob("*") if not p.is_dir())
    return all(p.name == "zarr.json" or _PARTIAL.search(p.name) for p in files)


class Dataset:
    """A zarr dataset of episodes. Create with `Dataset.create`, open with `Dataset.open`."""

    def __init__(self, root: zarr.Group, path: Path, writable: bool) -> None:
        attrs = root.attrs.asdict()
        if attrs.get("format") != FORMAT:
            raise ValueError(
                f"{path}: not an xembody dataset (format {attrs.get('format')!r}, "
                f"expected {FORMAT!r})"
            )
        self.path = path
        self.writable = writable
        self._root = root
        self.features = _features_from_json(attrs["features"])
        self.fps = float(attrs["fps"])
        self.meta: dict[str, Any] = dict(attrs.get("meta", {}))
        self.episodes: list[dict[str, Any]] = list(attrs.get("episodes", []))
        self._arrays = {k: root[f"data/{k}"] for k in self.features}
        self._pending: dict[str, list[np.ndarray]] = {k: [] for k in self.features}
        self._pending_bytes = 0
        self._pos = self.num_frames  # where the next flushed frame goes
        self._episode_frames = 0

    # --- opening ------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        features: dict[str, Feature],
        *,
        fps: float,
        meta: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Dataset:
        """A new, empty dataset at `path` (refuses an existing path unless `overwrite`, or
        unless it holds only a store whose creation was killed). Atomic: the store is built
        in a sibling folder and renamed into place."""
        path = Path(path)
        if not features:
            raise ValueError("a dataset needs at least one feature")
        if not fps > 0:
            raise ValueError(f"fps {fps}: expected a positive frame rate")
        if (path.exists() or path.is_symlink()) and not (overwrite or _unfinished(path)):
            raise FileExistsError(f"{path} exists; open it with mode='a' or pass overwrite")
        with built_in_place(path) as tmp:
            cls._build(tmp, features, fps, meta)
        import zarr

        return cls(zarr.open_group(str(path), mode="r+"), path, writable=True)

    @staticmethod
    def _build(
        path: Path, features: dict[str, Feature], fps: float, meta: dict[str, Any] | None
    ) -> None:
        import zarr
        from zarr.codecs import BloscCodec

        root = zarr.open_group(str(path), mode="w")
        data = root.create_group("data")
        for key, f in features.items():
            codec = BloscCodec(cname="lz4" if f.image else "zstd", clevel=3, shuffle="shuffle")
            data.create_array(
                key,
                shape=(0, *f.shape),
                chunks=(f.chunk_len, *f.shape),
                dtype=f.dtype,
                compressors=[codec],
            )
        root.create_group("meta").create_array(
            "episode_ends", shape=(0,), chunks=(4096,), dtype="int64"
        )
        root.update_attributes(
            {
                "format": FORMAT,
                "features": {k: asdict(f) for k, f in features.items()},
                "fps": float(fps),
                "meta": dict(meta or {}),
                "episodes": [],
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )

    @classmethod
    def open_or_create(
        cls,
        path: str | Path,
        features: dict[str, Feature],
        *,
        fps: float,
        meta: dict[str, Any] | None = None,
    ) -> Dataset:
        """The dataset at `path` opened for appending, or a new one (`create`) when there is
        none: nothing at `path`, or only a store whose creation was killed. An existing
        dataset keeps its fps and meta, and must have exactly `features` (ValueError naming
        the differences)."""
        path = Path(path)
        if not (path.exists() or path.is_symlink()) or _unfinished(path):
            return cls.create(path, features, fps=fps, meta=meta)
        ds = cls.open(path, mode="a")
        diff = {
            k: (ds.features.get(k), features.get(k))
            for k in sorted(set(ds.features) | set(features))
            if ds.features.get(k) != features.get(k)
        }
        if diff:
            raise ValueError(
                f"{path}: its features differ from the ones to record, as (dataset, expected): "
                f"{diff}; record into another path"
            )
        return ds

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> Dataset:
        """Open an existing dataset to read (`mode="r"`) or to append episodes (`"a"`).
        Appending first cuts away the frames of an episode that was never committed."""
        path = Path(path)
        if mode not in ("r", "a"):
            raise ValueError(f"mode {mode!r}: expected 'r' (read) or 'a' (append)")
        if mode == "a":
            _sweep_siblings(path)
        if (path / ".zgroup").is_file() and mode == "a":
            raise ValueError(f"{path}: a zarr 2 export is a read-only copy; append to its source")
        if _unfinished(path):
            raise FileNotFoundError(
                f"{path}: no dataset there (an empty folder, or a store whose creation was "
                "killed); Dataset.create and Dataset.open_or_create replace it"
            )
        if not ((path / "zarr.json").is_file() or (path / ".zgroup").is_file()):
            raise FileNotFoundError(f"{path}: no dataset there (no zarr.json)")
        import zarr

        root = zarr.open_group(str(path), mode="r+" if mode == "a" else "r")
        ds = cls(root, path, writable=mode == "a")
        if mode == "a":
            ds._repair()
        return ds

    def _repair(self) -> None:
        """Make the store what its commit point says (append opens): no temporary files, no
        frames or chunk files past the committed end, `meta/episode_ends` derived anew."""
        for p in self.path.rglob("*.partial"):
            if _PARTIAL.search(p.name):
                p.unlink(missing_ok=True)
        end = self.num_frames
        for key, arr in self._arrays.items():
            if arr.shape[0] < end:
                raise ValueError(
                    f"{self.path}: data/{key} holds {arr.shape[0]} frames but the committed "
                    f"episodes end at {end}; the store is damaged"
                )
            if arr.shape[0] > end:
                arr.resize((end, *arr.shape[1:]))
            first_past = -(-end // arr.chunks[0])  # chunks from this index on hold no frame
            chunk_dir = self.path / "data" / key / "c"
            if chunk_dir.is_dir():
                for p in chunk_dir.iterdir():
                    if p.name.isdigit() and int(p.name) >= first_past:
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
        ends = self._root["meta/episode_ends"]
        if ends.shape[0] != len(self.episodes) or not np.array_equal(ends[:], self.episode_ends):
            self._write_ends()

    # --- reading ------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self.episodes[-1]["end"]) if self.episodes else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return np.array([e["end"] for e in self.episodes], dtype=np.int64)

    def episode_slice(self, index: int) -> slice:
        if not -self.num_episodes <= index < self.num_episodes:
            raise IndexError(f"episode {index}: the dataset has {self.num_episodes} episodes")
        ep = self.episodes[index]
        return slice(int(ep["start"]), int(ep["end"]))

    def episode(self, index: int) -> dict[str, np.ndarray]:
        """Every feature of one committed episode, (length, *shape) each."""
        sl = self.episode_slice(index)
        return {k: arr[sl] for k, arr in self._arrays.items()}

    def read(self, key: str) -> np.ndarray:
        """All committed frames of feature `key`, (num_frames, *shape)."""
        if key not in self._arrays:
            raise KeyError(f"feature {key!r} not in the dataset; it has {sorted(self._arrays)}")
        return self._arrays[key][: self.num_frames]

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    # --- writing ------------------------------------------------------------------------
    def validate(self, frame: dict[str, Any]) -> dict[str, np.ndarray]:
        """`frame` as arrays of the features' dtypes; raises ValueError naming the problem."""
        missing = sorted(set(self.features) - set(frame))
        unknown = sorted(set(frame) - set(self.features))
        if missing or unknown:
            raise ValueError(
                f"frame keys: missing {missing}, unknown {unknown}; "
                f"expected {sorted(self.features)}"
            )
        out = {}
        for key, f in self.features.items():
            value = np.asarray(frame[key])
            if value.shape != f.shape:
                raise ValueError(f"frame[{key!r}] has shape {value.shape}, expected {f.shape}")
            if value.dtype.kind == "f":
                if np.dtype(f.dtype).kind != "f":
                    raise ValueError(f"frame[{key!r}] is {value.dtype}, expected {f.dtype}")
                if not np.isfinite(value).all():
                    raise ValueError(f"frame[{key!r}] contains NaN or inf")
            out[key] = value.astype(f.dtype, copy=False)
        return out

    def add_frame(self, frame: dict[str, Any]) -> None:
        """Append one frame to the episode in flight (validated; see `validate`)."""
        self.check_writable()
        for key, value in self.validate(frame).items():
            self._pending[key].append(value)
            self._pending_bytes += value.nbytes
        self._episode_frames += 1
        if self._pending_bytes >= FLUSH_BYTES:
            self._flush()

    def save_episode(self, **meta: Any) -> int:
        """Commit the episode in flight with its metadata (JSON values); returns its index."""
        self.check_writable()
        if self._episode_frames == 0:
            raise ValueError("save_episode: the episode has no frames")
        self._flush()
        start = self.num_frames
        record = {
            "index": self.num_episodes,
            "start": start,
            "end": start + self._episode_frames,
            "length": self._episode_frames,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **meta,
        }
        episodes = [*self.episodes, record]
        self._root.update_attributes({"episodes": episodes})  # the atomic commit point
        self.episodes = episodes
        self._episode_frames = 0
        _at("commit")
        self._write_ends()
        return record["index"]

    def discard_episode(self) -> None:
        """Drop the episode in flight (its frames are cut away now or on the next open)."""
        self.check_writable()
        for buf in self._pending.values():
            buf.clear()
        self._pending_bytes = 0
        self._episode_frames = 0
        self._pos = self.num_frames
        for arr in self._arrays.values():
            if arr.shape[0] > self._pos:
                arr.resize((self._pos, *arr.shape[1:]))

    @property
    def frames_in_flight(self) -> int:
        return self._episode_frames

    def _flush(self) -> None:
        n = len(next(iter(self._pending.values())))
        if n == 0:
            return
        for key, arr in self._arrays.items():
            block = np.stack(self._pending[key])
            if arr.shape[0] < self._pos + n:
                arr.resize((self._pos + n, *arr.shape[1:]))
            arr[self._pos : self._pos + n] = block
            self._pending[key].clear()
        self._pos += n
        self._pending_bytes = 0

    def _write_ends(self) -> None:
        ends = self._root["meta/episode_ends"]
        ends.resize((self.num_episodes,))
        _at("ends")
        if self.num_episodes:
            ends[:] = self.episode_ends

    def check_writable(self) -> None:
        if not self.writable:
            raise ValueError(f"{self.path} is open read-only; open it with mode='a' to append")

    def __repr__(self) -> str:
        keys = ", ".join(f"{k}{list(f.shape)}" for k, f in self.features.items())
        return (
            f"Dataset({self.path}, {self.num_episodes} episodes, {self.num_frames} frames, "
            f"{self.fps:g} fps, features: {keys})"
        )


def export_zarr2(src: Dataset | str | Path, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Copy the committed episodes of `src` into a zarr format 2 store at `dst` that
    diffusion_policy's ReplayBuffer (zarr 2.18) reads: `data/<key>` (T, *shape) arrays,
    `meta/episode_ends` (num_episodes,) int64, numcodecs Blosc (zstd, lz4 for images), the
    source's chunks along time, and the source's root attributes (so `Dataset.open` reads
    it too, read-only). Atomic like `create`; refuses an existing `dst` unless `overwrite`.
    Returns `dst`."""
    from numcodecs import Blosc

    ds = src if isinstance(src, Dataset) else Dataset.open(src)
    dst = Path(dst)
    if dst.resolve() == ds.path.resolve():
        raise ValueError(f"{dst}: the export must go to another path than its source")
    if (dst.exists() or dst.is_symlink()) and not overwrite:
        raise FileExistsError(f"{dst} exists; pass overwrite to replace it")
    with built_in_place(dst) as tmp:
        import zarr

        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        data = root.create_group("data")
        for key, f in ds.features.items():
            src_arr = ds._arrays[key]
            blosc = Blosc(cname="lz4" if f.image else "zstd", clevel=3, shuffle=Blosc.SHUFFLE)
            arr = data.create_array(
                key,
                shape=(ds.num_frames, *f.shape),
                chunks=src_arr.chunks,
                dtype=f.dtype,
                compressors=blosc,
            )
            step = src_arr.chunks[0] * max(1, FLUSH_BYTES // (src_arr.chunks[0] * f.frame_bytes))
            for i in range(0, ds.num_frames, step):
                arr[i : i + step] = src_arr[i : min(i + step, ds.num_frames)]
        ends = root.create_group("meta").create_array(
            "episode_ends", shape=(ds.num_episodes,), chunks=(4096,), dtype="int64"
        )
        if ds.num_episodes:
            ends[:] = ds.episode_ends
        root.update_attributes(
            {
                "format": FORMAT,
                "features": {k: asdict(f) for k, f in ds.features.items()},
                "fps": ds.fps,
                "meta": ds.meta,
                "episodes": ds.episodes,
                "created": ds._root.attrs.get("created"),
                "exported_from": str(ds.path),
            }
        )
    return dst
