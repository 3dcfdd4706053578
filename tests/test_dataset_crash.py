"""The dataset survives SIGKILL at every edge (issue 22): between the commit and the episode
boundaries, inside `create`, in the middle of a chunk write, and at 20 random instants in
a row against one store. After every kill each committed episode is byte-identical to what
was written, the store re-opens read-only and for appending, and the append open leaves no
leftovers. The writer is this file run as a child process (`python test_dataset_crash.py
PATH POINT COUNT`), writing deterministic episodes that the test recomputes."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from xembody.models import dataset
from xembody.models.dataset import Dataset, Feature

FEATURES = {
    "joint_pos": Feature((7,), "float32"),
    "rgb": Feature((24, 32, 3), "uint8", image=True),
}


def episode_data(k: int) -> dict[str, np.ndarray]:
    """Episode `k` of the child: 4..16 frames, random (incompressible) images."""
    n = 4 + (k * 7) % 13
    rng = np.random.default_rng(k)
    return {
        "joint_pos": (1000 * k + np.arange(n)[:, None] + np.arange(7) / 8).astype(np.float32),
        "rgb": rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8),
    }


def child(path: str, point: str, count: int) -> None:
    """Append episodes forever (from the committed count on); with `point`, kill this process
    at the `count`-th time it reaches that point: a `dataset._crash_hook` point, or "chunk"
    (a chunk file written to its temporary name, not yet renamed into place)."""
    hits = 0

    def hook(name: str) -> None:
        nonlocal hits
        if name == point:
            hits += 1
            if hits == count:
                os.kill(os.getpid(), signal.SIGKILL)

    dataset._crash_hook = hook
    dataset.FLUSH_BYTES = 8 << 10  # flush every few frames: many chunk writes per episode
    dataset.CHUNK_BYTES = 16 << 10  # 7 image frames a chunk
    if point == "chunk":  # zarr's atomic write: temporary file, then rename
        import zarr.storage._local as local

        atomic_write = local._atomic_write

        @contextlib.contextmanager
        def killed_before_rename(file, mode, exclusive=False):
            with atomic_write(file, mode, exclusive) as f:
                yield f
                if "/data/" in Path(file).as_posix() and "/c/" in Path(file).as_posix():
                    f.flush()
                    hook("chunk")

        local._atomic_write = killed_before_rename
    ds = Dataset.open_or_create(path, FEATURES, fps=30.0, meta={"body": "arm_s0"})
    print("READY", flush=True)
    k = ds.num_episodes
    while True:
        ep = episode_data(k)
        for t in range(len(ep["rgb"])):
            ds.add_frame({key: v[t] for key, v in ep.items()})
        ds.save_episode(k=k)
        k += 1


def run_child(path: Path, point: str = "", count: int = 1, kill_after: float | None = None):
    """Run the writer until it kills itself at `point`, or until the test kills it
    `kill_after` seconds after it opened the store."""
    cmd = [sys.executable, __file__, str(path), point, str(count)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        if kill_after is not None:
            assert proc.stdout.readline().strip() == "READY"
            time.sleep(kill_after)
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, proc.returncode


def leftovers(path: Path) -> list[str]:
    """Temporary files in the store, temporary folders next to it."""
    partial = [str(p) for p in path.rglob("*.partial")]
    return partial + [p.name for p in path.parent.glob(f".{path.name}.*")]


def check_store(path: Path, at_least: int = 0) -> int:
    """Every committed episode byte-identical, boundaries from the commit point, a clean
    store after an append open; returns the number of committed episodes."""
    ds = Dataset.open(path)  # read-only first: it must not need any repair
    lengths = [len(episode_data(k)["rgb"]) for k in range(ds.num_episodes)]
    assert ds.num_episodes >= at_least
    assert ds.episode_ends.tolist() == np.cumsum(lengths).tolist()
    for k in range(ds.num_episodes):
        got, want = ds.episode(k), episode_data(k)
        assert ds.episodes[k]["k"] == k
        for key in FEATURES:
            assert got[key].tobytes() == want[key].tobytes(), (k, key)
    ds = Dataset.open(path, mode="a")  # repairs: cuts the tail, rewrites the boundaries
    assert leftovers(path) == []
    raw = zarr.open_group(str(path), mode="r")
    assert raw["meta/episode_ends"][:].tolist() == ds.episode_ends.tolist()
    for key, f in FEATURES.items():
        assert raw[f"data/{key}"].shape == (ds.num_frames, *f.shape)
        chunk = raw[f"data/{key}"].chunks[0]
        stored = {int(p.name) for p in (path / "data" / key / "c").glob("*")}
        assert all(i * chunk < ds.num_frames for i in stored), (key, sorted(stored))
    return ds.num_episodes


def append_one(path: Path) -> None:
    ds = Dataset.open(path, mode="a")
    k = ds.num_episodes
    ep = episode_data(k)
    for t in range(len(ep["rgb"])):
        ds.add_frame({key: v[t] for key, v in ep.items()})
    assert ds.save_episode(k=k) == k
    check_store(path, at_least=k + 1)


@pytest.mark.parametrize("point", ["commit", "ends"])
def test_kill_between_commit_and_episode_ends(tmp_path, point):
    path = tmp_path / "d.zarr"
    run_child(path, point, count=3)  # the third episode is committed, its end not stored
    ends = np.cumsum([len(episode_data(k)["rgb"]) for k in range(3)]).tolist()
    stale = ends[:2] if point == "commit" else [*ends[:2], 0]  # stale / not monotonic

    def on_disk() -> list[int]:
        return zarr.open_group(str(path), mode="r")["meta/episode_ends"][:].tolist()

    assert on_disk() == stale
    assert Dataset.open(path).episode_ends.tolist() == ends  # the commit point wins, read-only
    assert on_disk() == stale  # (a read-only open writes nothing)
    assert check_store(path) == 3
    append_one(path)


def test_kill_inside_create_blocks_neither_create_nor_open_or_create(tmp_path):
    path = tmp_path / "d.zarr"
    run_child(path, "create")  # the store is built in a sibling folder, never renamed
    assert not path.exists() and len(leftovers(path)) == 1
    with pytest.raises(FileNotFoundError, match="no dataset"):
        Dataset.open(path)
    Dataset.create(path, FEATURES, fps=30.0)  # no overwrite needed; the leftover goes
    assert leftovers(path) == []
    # what an older xembody's killed create left: a zarr group without format, no frames
    path = tmp_path / "old.zarr"
    zarr.open_group(str(path), mode="w").create_group("data").create_array(
        "joint_pos", shape=(0, 7), chunks=(64, 7), dtype="float32"
    )
    with pytest.raises(FileNotFoundError, match="creation was"):
        Dataset.open(path, mode="a")
    run_child(path, kill_after=0.3)  # open_or_create replaces it, then writes
    check_store(path)
    append_one(path)
    # a folder with anything else is never taken for an unfinished store
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileNotFoundError, match="no dataset there"):
        Dataset.open_or_create(tmp_path / "mine", FEATURES, fps=30.0)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_kill_mid_chunk_write_leaves_a_temporary_file_the_next_open_removes(tmp_path):
    path = tmp_path / "d.zarr"
    run_child(path, "chunk", count=12)
    assert any("/data/" in p for p in leftovers(path))  # the chunk's temporary file
    assert check_store(path, at_least=1) >= 1
    append_one(path)


def test_twenty_random_kills_in_a_row_lose_no_committed_episode(tmp_path):
    path = tmp_path / "d.zarr"
    rng = np.random.default_rng(22)
    committed = mid_episode = 0
    for _ in range(20):
        run_child(path, kill_after=float(rng.uniform(0.0, 0.4)))
        frames = zarr.open_group(str(path), mode="r")["data/rgb"].shape[0]
        mid_episode += frames > Dataset.open(path).num_frames  # frames past the commit
        committed = check_store(path, at_least=committed)  # never fewer than before
    print(f"{committed} episodes committed, {mid_episode} of 20 kills mid-episode")
    assert committed >= 10 and mid_episode >= 5  # the kills came while writing
    append_one(path)


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
