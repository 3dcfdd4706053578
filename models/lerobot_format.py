"""LeRobot interop, the format both directions share: an xembody dataset written as a
LeRobotDataset (`models/lerobot_export.py`) and one read back (`models/lerobot_import.py`).

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

import json
from pathlib import Path
from typing import Any

from xembody.models.dataset import Feature

CODEBASE_VERSION = "v3.0"
SUPPORTED_VERSIONS = ("v3.0",)
CHUNKS_SIZE = 1000  # files per chunk folder
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
