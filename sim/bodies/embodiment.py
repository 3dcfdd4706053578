"""The `Embodiment`: one robot body as data.

An embodiment is an MJCF document (the single source of truth for the physics) plus the
facts about it that the rest of xembody needs without parsing MJCF again: the actuated
joints in action order with their limits, default pose, PD gains and effort limits, where
the sensors are, and what the action means.

Conventions (units SI, angles in radians):
- `joints` lists the *actuated* joints in action order; actuator i drives joints[i].
- `action.kind` is "joint_position" (PD position targets, rad or m) or "joint_velocity"
  (velocity targets, rad/s or m/s, used by wheels and holonomic bases).
- `sensors` names MJCF elements: an IMU site (with gyro/accelerometer/framequat sensors
  named "imu_gyro", "imu_acc", "imu_quat"), the base body, an end-effector site and an
  optional camera.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

BODY_CLASSES = ("humanoid", "quadruped", "arm", "wheeled", "custom")
ACTION_KINDS = ("joint_position", "joint_velocity")


def joint_kp(model: mujoco.MjModel, joint_ids) -> np.ndarray:
    """The position gain (kp) of the actuator that drives each of the joints `joint_ids`."""
    driven = list(model.actuator_trnid[:, 0])
    missing = [int(j) for j in joint_ids if j not in driven]
    if missing:
        raise ValueError(f"joints {missing} have no actuator; expected position-driven joints")
    return np.array([model.actuator_gainprm[driven.index(j), 0] for j in joint_ids])


@dataclass(frozen=True, kw_only=True)
class JointInfo:
    """One actuated joint. Angles in rad (hinge) or m (slide); gains in N m/rad or N/m."""

    name: str
    kind: str  # "hinge" | "slide"
    range: tuple[float, float]
    default: float
    kp: float
    kd: float
    effort_limit: float
    velocity_limit: float = float("inf")

    def __post_init__(self) -> None:
        if self.kind not in ("hinge", "slide"):
            raise ValueError(
                f"joint {self.name!r}: kind={self.kind!r}, expected 'hinge' or 'slide'"
            )
        lo, hi = self.range
        if not lo <= hi:
            raise ValueError(f"joint {self.name!r}: range={self.range}, expected low <= high")
        if not lo - 1e-9 <= self.default <= hi + 1e-9:
            raise ValueError(
                f"joint {self.name!r}: default={self.default} lies outside range {self.range}"
            )
        if self.effort_limit <= 0:
            raise ValueError(f"joint {self.name!r}: effort_limit={self.effort_limit}, expected > 0")


@dataclass(frozen=True, kw_only=True)
class SensorLayout:
    """Names of the MJCF elements that carry the body's sensors (None: not present)."""

    imu_site: str | None = None
    base_body: str | None = None
    ee_site: str | None = None
    camera: str | None = None


@dataclass(frozen=True, kw_only=True)
class ActionSpace:
    """What the policy's action vector means. `low`/`high` bound each entry."""

    kind: str
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"action kind={self.kind!r}, expected one of {ACTION_KINDS}")
        if len(self.low) != len(self.high):
            raise ValueError(f"action low has {len(self.low)} entries, high {len(self.high)}")

    @property
    def dim(self) -> int:
        return len(self.low)


@dataclass(frozen=True, kw_only=True)
class Embodiment:
    """A robot body: MJCF text plus its joint, sensor and action facts."""

    name: str
    body_class: str
    mjcf: str
    joints: tuple[JointInfo, ...]
    sensors: SensorLayout
    action: ActionSpace
    floating_base: bool
    source: str  # "generator:humanoid(seed=3)" or a file path
    params: dict[str, Any] = field(default_factory=dict)  # sampled generator parameters

    def __post_init__(self) -> None:
        if self.body_class not in BODY_CLASSES:
            raise ValueError(f"body_class={self.body_class!r}, expected one of {BODY_CLASSES}")
        if self.action.dim != len(self.joints):
            raise ValueError(
                f"{self.name}: action has {self.action.dim} entries but {len(self.joints)} "
                "actuated joints"
            )

    # --- derived views -------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def num_actions(self) -> int:
        return len(self.joints)

    @property
    def default_pose(self) -> np.ndarray:
        return np.array([j.default for j in self.joints])

    def spec(self) -> mujoco.MjSpec:
        """A fresh, editable MjSpec of this body."""
        return mujoco.MjSpec.from_string(self.mjcf)

    def compile(self) -> mujoco.MjModel:
        return mujoco.MjModel.from_xml_string(self.mjcf)

    def write(self, path: str | Path) -> Path:
        """Write the MJCF to `path` and the joint/sensor/action facts to `<path>.json`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.mjcf)
        meta = dataclasses.asdict(self)
        meta.pop("mjcf")
        path.with_suffix(path.suffix + ".json").write_text(
            json.dumps(meta, indent=2, default=float)
        )
        return path

    @classmethod
    def read(cls, path: str | Path) -> Embodiment:
        """Read a body written by `write` (the MJCF and its `.json` facts)."""
        path = Path(path)
        facts = path.with_suffix(path.suffix + ".json")
        for p in (path, facts):
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p}: no such file (a body is an MJCF file plus its .json)"
                )
        meta = json.loads(facts.read_text())
        try:
            joints = tuple(
                JointInfo(**{**j, "range": tuple(j["range"])}) for j in meta.pop("joints")
            )
            action = meta.pop("action")
            action = ActionSpace(
                kind=action["kind"], low=tuple(action["low"]), high=tuple(action["high"])
            )
            sensors = SensorLayout(**meta.pop("sensors"))
            mjcf = _absolute_asset_paths(path)
            return cls(mjcf=mjcf, joints=joints, sensors=sensors, action=action, **meta)
        except (TypeError, KeyError) as err:
            raise ValueError(f"{facts}: not a body description ({err})") from None


def asset_files(spec: mujoco.MjSpec, base: str | Path) -> Iterator[tuple[Any, Path]]:
    """(asset, its file as a path) for every mesh, texture, height-field and skin of `spec`
    that names a file; a relative file is taken, as MuJoCo takes it, from `base` (the
    folder of the MJCF file) and the spec's meshdir or texturedir."""
    folders = {"mesh": spec.meshdir, "texture": spec.texturedir}
    groups = (("mesh", spec.meshes), ("texture", spec.textures), ("", spec.hfields),
              ("", spec.skins))  # fmt: skip
    for kind, group in groups:
        for asset in group:
            if asset.file:
                yield asset, Path(base) / folders.get(kind, "") / asset.file


def _absolute_asset_paths(path: Path) -> str:
    """The MJCF text of `path` with every asset file it names relative to itself made
    absolute: the text is compiled from a string later, where relative files would not
    resolve (an export's bundled body.xml names its meshes as assets/...). A file that
    names none is returned as is."""
    text = path.read_text()
    if 'file="' not in text:
        return text
    spec = mujoco.MjSpec.from_file(str(path))
    for asset, file in asset_files(spec, path.parent):
        asset.file = str(file.resolve())
    spec.meshdir, spec.texturedir = "", ""
    return spec.to_xml()
