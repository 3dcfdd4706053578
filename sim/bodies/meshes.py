"""Mesh files of a loaded robot: find them, and convert the ones MuJoCo cannot read.

- `package://pkg/sub/file` (ROS) and `file://` references are looked up next to the robot
  file, in its parent folders (three levels) and in the `package_path` folders (each one
  may hold packages, `DIR/pkg/sub/file`, or be a package, `DIR/sub/file`).
- MuJoCo reads STL, OBJ and MSH meshes. Any other format trimesh reads (COLLADA `.dae`
  through pycollada, PLY, GLB, ...) is converted once to binary STL in the cache folder
  (`$XEMBODY_CACHE`, default `~/.cache/xembody`)/meshes, named by a hash of the source
  file, so a second load reuses it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import mujoco

READABLE = (".stl", ".obj", ".msh")
PREFIXES = ("package://", "file://")


def cache_dir() -> Path:
    return Path(os.environ.get("XEMBODY_CACHE", "~/.cache/xembody")).expanduser() / "meshes"


def resolve_meshes(
    spec: mujoco.MjSpec, robot: Path, folder: Path, package_path: Sequence[str | Path] = ()
) -> list[str]:
    """Point every mesh of `spec` at a readable file; returns one note per converted mesh.

    Raises ValueError naming the robot file, the mesh and the fix when a mesh is missing."""
    roots = [folder, *list(folder.parents)[:3]]
    extra = [Path(p).expanduser().resolve() for p in package_path]
    base = Path(spec.modelfiledir or folder)
    notes = []
    for mesh in spec.meshes:
        ref = mesh.file
        if not ref:
            continue
        found = _find(ref, roots, extra, base / spec.meshdir)
        if found is None:
            raise ValueError(
                f"{robot}: mesh {ref!r} (mesh {mesh.name!r}) not found next to the file or in "
                f"its parent folders; give the folder that holds its package with "
                f"--package-path DIR (or package_path: in the card)"
            )
        if found.suffix.lower() not in READABLE:
            converted = convert(found)
            notes.append(f"{found.name} -> {converted}")
            found = converted
        mesh.file = str(found)
    return notes


def _find(ref: str, roots: list[Path], extra: list[Path], meshdir: Path) -> Path | None:
    for prefix in PREFIXES:
        if ref.startswith(prefix):
            rest = ref[len(prefix) :]
            if prefix == "file://" and Path(rest).is_absolute() and Path(rest).is_file():
                return Path(rest)
            sub = rest.partition("/")[2]
            for r in [*extra, *roots]:
                for c in (rest, sub):
                    if c and (r / c).is_file():
                        return (r / c).resolve()
            return None
    path = Path(ref)
    if path.is_absolute():
        return path if path.is_file() else None
    for r in (meshdir, *roots[:1]):
        if (r / path).is_file():
            return (r / path).resolve()
    return None


def convert(source: Path) -> Path:
    """`source` as a binary STL in the cache (converted once; trimesh + pycollada)."""
    digest = hashlib.sha1(source.read_bytes()).hexdigest()[:16]
    out = cache_dir() / f"{source.stem}-{digest}.stl"
    if out.is_file():
        return out
    try:
        import trimesh

        mesh = trimesh.load(str(source), force="mesh")
    except Exception as e:  # trimesh raises many types for unreadable files
        raise ValueError(
            f"{source}: mesh format {source.suffix!r} is not readable by MuJoCo and trimesh "
            f"could not convert it ({type(e).__name__}: {e}); convert it to STL or OBJ"
        ) from None
    if mesh.is_empty:
        raise ValueError(f"{source}: the mesh holds no triangles; convert it to STL or OBJ")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    mesh.export(str(tmp), file_type="stl")
    tmp.replace(out)  # atomic: a parallel loader never reads half a file
    return out
