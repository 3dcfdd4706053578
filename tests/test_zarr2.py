"""zarr format 2 export for diffusion-policy replay buffers (issue 22): the layout checked by
plain file reads (JSON metadata, chunks decoded with numcodecs), and read by real zarr 2.18
the way diffusion_policy's ReplayBuffer opens it (in a venv cached under .cache/)."""

import json
import shutil
import subprocess
from pathlib import Path

import numcodecs
import numpy as np
import pytest

from xembody.models import dataset
from xembody.models.dataset import Dataset, Feature, export_zarr2

FEATURES = {
    "action": Feature((7,), "float32"),
    "state": Feature((3,), "float64"),
    "rgb": Feature((12, 16, 3), "uint8", image=True),
}
LENGTHS = [9, 14, 5]  # 28 frames: several chunks, the last one part-full
VENV = Path(__file__).resolve().parents[1] / ".cache" / "zarr2-venv"


@pytest.fixture
def source(tmp_path, monkeypatch) -> Dataset:
    """A v3 dataset of three episodes (chunks of 10 image frames) plus the flushed frames of
    an episode never committed, which the export leaves out."""
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 10 * 12 * 16 * 3)  # 10 image frames a chunk
    ds = Dataset.create(tmp_path / "src.zarr", FEATURES, fps=15.0, meta={"body": "arm_s0"})
    rng = np.random.default_rng(0)
    for n in [*LENGTHS, 6]:
        for _ in range(n):
            ds.add_frame(
                {
                    k: rng.integers(0, 256, f.shape, np.uint8)
                    if f.image
                    else rng.normal(size=f.shape)
                    for k, f in FEATURES.items()
                }
            )
        if n != 6:
            ds.save_episode(success=True)
    ds._flush()  # the uncommitted episode is on disk
    return Dataset.open(ds.path)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_export_writes_the_zarr2_replay_buffer_layout(source, tmp_path):
    out = export_zarr2(source, tmp_path / "dp.zarr")
    assert read_json(out / ".zgroup") == {"zarr_format": 2}
    assert read_json(out / "data" / ".zgroup") == read_json(out / "meta" / ".zgroup")
    assert read_json(out / ".zattrs")["episodes"] == source.episodes
    ends = np.cumsum(LENGTHS)

    def stored(array_dir: Path) -> np.ndarray:
        """The array read back from its .zarray and chunk files, without zarr."""
        meta = read_json(array_dir / ".zarray")
        assert meta["zarr_format"] == 2 and meta["order"] == "C" and meta["filters"] is None
        assert meta["compressor"]["id"] == "blosc"  # numcodecs Blosc, which zarr 2 knows
        codec = numcodecs.get_codec(meta["compressor"])
        shape, chunks, dtype = meta["shape"], meta["chunks"], np.dtype(meta["dtype"])
        sep = meta.get("dimension_separator", ".")
        blocks = []
        for i in range(-(-shape[0] // chunks[0])):
            name = sep.join(str(c) for c in [i] + [0] * (len(shape) - 1))
            raw = codec.decode((array_dir / name).read_bytes())
            blocks.append(np.frombuffer(raw, dtype).reshape(chunks))
        return np.concatenate(blocks)[: shape[0]] if blocks else np.zeros(shape, dtype)

    assert stored(out / "meta" / "episode_ends").tolist() == ends.tolist()
    for key, f in FEATURES.items():
        values = stored(out / "data" / key)
        assert values.dtype == np.dtype(f.dtype) and values.shape == (ends[-1], *f.shape)
        assert values.tobytes() == source.read(key).tobytes()  # committed frames only
        cname = read_json(out / "data" / key / ".zarray")["compressor"]["cname"]
        assert cname == ("lz4" if f.image else "zstd")

    back = Dataset.open(out)  # our reader reads the copy, read-only
    assert back.episode_ends.tolist() == ends.tolist() and back.meta == source.meta
    with pytest.raises(ValueError, match="read-only copy"):
        Dataset.open(out, mode="a")
    with pytest.raises(FileExistsError):
        export_zarr2(source.path, out)
    export_zarr2(source.path, out, overwrite=True)
    assert [p.name for p in tmp_path.glob(".dp.zarr.*")] == []  # no temporary folder left


READER = """
import json, sys
import numpy as np, zarr

root = zarr.open(sys.argv[1], "r")  # as diffusion_policy's ReplayBuffer.create_from_path
ends = root["meta"]["episode_ends"][:]
for key, arr in root["data"].items():
    assert arr.shape[0] == ends[-1], (key, arr.shape)
    np.save(f"{sys.argv[2]}/{key}.npy", root["data"][key][:])
print(json.dumps({"zarr": zarr.__version__, "ends": ends.tolist(),
                  "compressor": root["data"]["rgb"].compressor.codec_id}))
"""


def zarr2_python() -> Path:
    """Python of a venv with zarr 2.18 (built once under .cache/); skips when it can't be."""
    python = VENV / "bin" / "python"
    if (VENV / "ready").is_file():
        return python
    base = shutil.which("python3.11")
    if base is None:
        pytest.skip("no python3.11 to build the zarr 2 venv")
    shutil.rmtree(VENV, ignore_errors=True)
    try:
        subprocess.run([base, "-m", "venv", str(VENV)], check=True, capture_output=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run(
            [*pip, "zarr>=2.18,<3", "numpy"], check=True, capture_output=True, timeout=600
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        shutil.rmtree(VENV, ignore_errors=True)
        stderr = getattr(err, "stderr", b"") or b""
        pytest.skip(f"could not install zarr 2.18 (no package registry?): {stderr[-300:]!r}")
    (VENV / "ready").write_text("zarr>=2.18,<3\n")
    return python


def test_zarr_2_18_reads_the_export_like_diffusion_policy(source, tmp_path):
    python = zarr2_python()
    out = export_zarr2(source, tmp_path / "dp.zarr")
    (tmp_path / "npy").mkdir()
    run = subprocess.run([str(python), "-c", READER, str(out), str(tmp_path / "npy")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["zarr"].startswith("2.") and got["compressor"] == "blosc"
    assert got["ends"] == np.cumsum(LENGTHS).tolist()
    for key in FEATURES:
        assert np.load(tmp_path / "npy" / f"{key}.npy").tobytes() == source.read(key).tobytes()
