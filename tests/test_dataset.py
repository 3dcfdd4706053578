"""The zarr dataset: round trip, validation, commit point, resume, the non-blocking recorder."""

import json
import threading

import numpy as np
import pytest

from xembody.real.dataset import FORMAT, Dataset, Feature, Recorder

FEATURES = {
    "joint_pos": Feature((3,), "float32"),
    "rgb": Feature((8, 10, 3), "uint8", image=True),
}


def frame(t: int) -> dict:
    return {
        "joint_pos": np.full(3, t, np.float32),
        "rgb": np.full((8, 10, 3), t % 256, np.uint8),
    }


def write_episodes(ds: Dataset, lengths: list[int], t0: int = 0) -> int:
    t = t0
    for n in lengths:
        for _ in range(n):
            ds.add_frame(frame(t))
            t += 1
        ds.save_episode(success=True)
    return t


def test_round_trip_keeps_frames_boundaries_and_metadata(tmp_path):
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30, meta={"body": "arm_s0"})
    write_episodes(ds, [4, 6])
    back = Dataset.open(tmp_path / "d.zarr")
    assert back.num_episodes == 2 and back.num_frames == 10
    assert back.episode_ends.tolist() == [4, 10]
    assert back.meta == {"body": "arm_s0"} and back.fps == 30
    ep = back.episode(1)
    assert ep["joint_pos"][:, 0].tolist() == [4, 5, 6, 7, 8, 9]
    assert ep["rgb"].shape == (6, 8, 10, 3) and ep["rgb"][0, 0, 0, 0] == 4
    assert back.episodes[1]["success"] is True and back.episodes[1]["length"] == 6
    # The diffusion-policy style boundary array is on disk too.
    assert Dataset.open(tmp_path / "d.zarr")._root["meta/episode_ends"][:].tolist() == [4, 10]
    root_attrs = json.loads((tmp_path / "d.zarr" / "zarr.json").read_text())["attributes"]
    assert root_attrs["format"] == FORMAT


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"joint_pos": np.zeros(3)}, "missing \\['rgb'\\]"),
        ({**frame(0), "extra": 1}, "unknown \\['extra'\\]"),
        ({**frame(0), "joint_pos": np.zeros(4)}, "shape \\(4,\\), expected \\(3,\\)"),
        ({**frame(0), "joint_pos": np.array([0, np.nan, 0])}, "joint_pos.*NaN"),
        ({**frame(0), "rgb": np.zeros((8, 10, 3))}, "rgb.*float64, expected uint8"),
    ],
)
def test_bad_frames_are_refused_with_the_key_named(tmp_path, bad, message):
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    with pytest.raises(ValueError, match=message):
        ds.add_frame(bad)
    assert ds.frames_in_flight == 0


def test_uncommitted_frames_are_invisible_and_cut_on_resume(tmp_path):
    path = tmp_path / "d.zarr"
    ds = Dataset.create(path, FEATURES, fps=30)
    t = write_episodes(ds, [5])
    for _ in range(7):  # an episode in flight, flushed to disk but never committed
        ds.add_frame(frame(t))
        t += 1
    ds._flush()
    assert ds._arrays["joint_pos"].shape[0] == 12  # the frames are on disk ...
    reader = Dataset.open(path)
    assert reader.num_frames == 5 and reader.read("joint_pos").shape == (5, 3)  # ... not visible
    resumed = Dataset.open(path, mode="a")  # a new process resumes: the tail is cut away
    assert resumed._arrays["joint_pos"].shape[0] == 5
    write_episodes(resumed, [3], t0=100)
    final = Dataset.open(path)
    assert final.episode_ends.tolist() == [5, 8]
    assert final.episode(1)["joint_pos"][:, 0].tolist() == [100, 101, 102]


def test_read_only_and_missing_stores_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset there"):
        Dataset.open(tmp_path / "nothing.zarr")
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    write_episodes(ds, [2])
    with pytest.raises(ValueError, match="read-only"):
        Dataset.open(tmp_path / "d.zarr").add_frame(frame(0))
    with pytest.raises(FileExistsError):
        Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    with pytest.raises(ValueError, match="image Feature"):
        Feature((4, 4, 3), "float32", image=True)


def test_recorder_writes_in_the_background_and_counts_drops(tmp_path):
    ds = Dataset.create(tmp_path / "d.zarr", FEATURES, fps=30)
    with Recorder(ds, max_queue=1000) as rec:
        for t in range(20):
            assert rec.add_frame(frame(t))
        rec.end_episode(notes="first")
        rec.flush()
        assert rec.stats()["frames"] == 20 and rec.stats()["episodes"] == 1
    back = Dataset.open(tmp_path / "d.zarr")
    assert back.episodes[0]["notes"] == "first" and back.episodes[0]["dropped_frames"] == 0

    # A writer stalled on a slow disk: the queue fills, later frames are dropped and counted.
    ds = Dataset.open(tmp_path / "d.zarr", mode="a")
    release = threading.Event()
    write = ds.add_frame

    def slow_add_frame(f):
        release.wait(10)
        write(f)

    ds.add_frame = slow_add_frame
    rec = Recorder(ds, max_queue=2)
    results = [rec.add_frame(frame(t)) for t in range(6)]
    assert not all(results) and rec.dropped == results.count(False) >= 3
    release.set()
    rec.end_episode()
    rec.close()
    assert rec.frames + rec.dropped == 6
    back = Dataset.open(tmp_path / "d.zarr")
    assert back.num_episodes == 2
    assert back.episodes[1]["dropped_frames"] == rec.dropped
    assert back.episodes[1]["length"] == rec.frames
