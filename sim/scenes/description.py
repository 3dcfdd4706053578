"""What a scan says about a scene: the seam between perception and scene generation.

A `SceneDescription` is plain data in the world frame (metres, radians, z up, floor at
`floor.height`): the floor plane, the walls as vertical planes, and one `ObjectEstimate` per
object: a gravity-aligned box (`center`, full extents `size`, `yaw` of the box's local +x
about z), relations to the floor, walls and other objects, shape descriptors and a category
with a confidence. `to_json`/`from_json` round-trip it; the JSON carries `SCHEMA_VERSION`
and a loader meeting another version says so. Perception (xembody.real.perception)
writes it; the twin and the cousins (cousins.py) are built from it.

Box frame: local +x is the object's depth axis (its front faces +x, e.g. a cabinet's drawer
fronts), +y its width, +z its height; `size` = (depth, width, height).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = "xembody.scene/1"
CATEGORIES = ("box", "cylinder", "table", "shelf", "cabinet")
RELATION_PREFIXES = ("on_floor", "against_wall:", "on_top_of:", "wall_mounted:")
DESCRIPTOR_KEYS = ("fill_ratio", "n_shelves", "n_drawers", "n_doors", "handle", "cylinder_fit")


def _vec(name: str, value, n: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r}: expected {n} numbers") from None
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} = {value!r}: expected {n} finite numbers")
    return out


@dataclass(frozen=True, kw_only=True)
class Floor:
    """The floor plane: unit `normal` (world, ~ (0, 0, 1)) and `height` (m, z of the plane)."""

    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    height: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _vec("floor.normal", self.normal, 3))
        if abs(math.hypot(*self.normal) - 1.0) > 1e-3:
            raise ValueError(f"floor.normal = {self.normal}: expected a unit vector")


@dataclass(frozen=True, kw_only=True)
class WallPlane:
    """A vertical wall: a `point` on it (world, m), its horizontal unit `normal` pointing
    into the room, and its `extent` (length along the wall, height), m."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]
    extent: tuple[float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", _vec("wall.point", self.point, 3))
        object.__setattr__(self, "normal", _vec("wall.normal", self.normal, 3))
        object.__setattr__(self, "extent", _vec("wall.extent", self.extent, 2))
        if abs(math.hypot(*self.normal) - 1.0) > 1e-3:
            raise ValueError(f"wall.normal = {self.normal}: expected a unit vector")

    def distance(self, xy) -> float:
        """Signed horizontal distance of point `xy` from the wall (positive inside the room)."""
        return (xy[0] - self.point[0]) * self.normal[0] + (xy[1] - self.point[1]) * self.normal[1]


def default_descriptors() -> dict:
    return {
        "fill_ratio": 1.0,
        "n_shelves": 0,
        "n_drawers": 0,
        "n_doors": 0,
        "handle": False,
        "cylinder_fit": 1.0,
    }


@dataclass(frozen=True, kw_only=True)
class ObjectEstimate:
    """One object. `descriptors`: fill_ratio (occupied fraction of the box volume, 0..1),
    n_shelves (internal horizontal layers), n_drawers, n_doors, handle (bool), cylinder_fit
    (RMS residual of a vertical-cylinder fit divided by its radius; small = round)."""

    id: str
    category: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0
    relations: tuple[str, ...] = ()
    descriptors: dict = field(default_factory=default_descriptors)
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(
                f"object {self.id!r}: category {self.category!r}, expected {CATEGORIES}"
            )
        object.__setattr__(self, "center", _vec(f"object {self.id!r} center", self.center, 3))
        object.__setattr__(self, "size", _vec(f"object {self.id!r} size", self.size, 3))
        if min(self.size) <= 0:
            raise ValueError(f"object {self.id!r}: size {self.size}, expected positive extents")
        object.__setattr__(self, "yaw", float(self.yaw))
        object.__setattr__(self, "relations", tuple(str(r) for r in self.relations))
        for r in self.relations:
            if not r.startswith(RELATION_PREFIXES):
                raise ValueError(
                    f"object {self.id!r}: relation {r!r}, expected one of {RELATION_PREFIXES}"
                )
        unknown = set(self.descriptors) - set(DESCRIPTOR_KEYS)
        if unknown:
            raise ValueError(
                f"object {self.id!r}: descriptors {sorted(unknown)}, expected {DESCRIPTOR_KEYS}"
            )
        object.__setattr__(self, "descriptors", {**default_descriptors(), **self.descriptors})
        if not 0.0 <= float(self.confidence) <= 1.0:
            raise ValueError(f"object {self.id!r}: confidence {self.confidence}, expected 0..1")


@dataclass(frozen=True, kw_only=True)
class SceneDescription:
    """Floor, walls and objects of one scene (see the module docstring for frames and units)."""

    floor: Floor = field(default_factory=Floor)
    walls: tuple[WallPlane, ...] = ()
    objects: tuple[ObjectEstimate, ...] = ()
    schema: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "walls", tuple(self.walls))
        object.__setattr__(self, "objects", tuple(self.objects))
        ids = [o.id for o in self.objects]
        if len(set(ids)) != len(ids):
            raise ValueError(f"object ids {ids}: expected unique ids")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for o in d["objects"]:
            o["descriptors"] = {
                k: (bool(v) if k == "handle" else int(v) if k.startswith("n_") else float(v))
                for k, v in o["descriptors"].items()
            }
        return d

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "scene description") -> SceneDescription:
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
        if d.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"{source}: schema {d.get('schema')!r}, expected {SCHEMA_VERSION!r}")
        try:
            return cls(
                floor=Floor(**d["floor"]),
                walls=tuple(WallPlane(**w) for w in d.get("walls", [])),
                objects=tuple(ObjectEstimate(**o) for o in d.get("objects", [])),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"{source}: malformed scene description ({err})") from None

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> SceneDescription:
        """Parse JSON text, or read a file when given a path (Path or an existing file name)."""
        source = "scene description"
        text = str(text_or_path)
        if isinstance(text_or_path, Path) or not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such scene description file")
            source, text = str(path), path.read_text()
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: not valid JSON ({err})") from None
        return cls.from_dict(d, source=source)
