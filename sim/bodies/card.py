"""The body card: a small YAML file that says what a robot file does not.

A vendor URDF or MJCF never says which link is the end effector, which links are feet,
whether the base floats (a URDF has no floating joint) or what gains hold it. The card
does, and every verb that loads a body reads it (`--card`, or `<robot>.yaml` /
`<robot>.card.yaml` found beside the robot file). `xembody bodies check FILE --write-card`
writes one from its guesses, with the evidence as comments, for the user to edit.

    robot: quad.urdf          # the robot file, relative to the card (a card can stand for it)
    class: quadruped          # arm | quadruped | humanoid | wheeled
    base: floating            # fixed | floating (a URDF robot with legs floats)
    ee: tool0                 # end-effector link or site (arms)
    feet: [FL_calf_foot, FR_calf_foot, RL_calf_foot, RR_calf_foot]   # foot links or sites
    imu: imu_link             # IMU link or site (default: a site at the base)
    keyframe: home            # the keyframe that holds the default pose
    default_pose: {"*_thigh_joint": 0.8, "*_calf_joint": -1.5}   # rad or m, fnmatch patterns
    armature: {"*_joint": 0.01}   # kg m^2 (or kg): reflected rotor inertia, which URDF lacks
    exclude: [gripper_*]      # joints left out of the action (held at their default)
    gains:                    # the rule, or per-joint values (fnmatch patterns)
      rule: natural_frequency # kp = I w^2, kd = 2 zeta I w (see sim/bodies/gains.py)
      frequency_hz: 10
      damping_ratio: 1.0
      joints: {"*_calf_joint": {kp: 80, kd: 2}}
    package_path: [../..]     # folders that hold ROS packages for package:// meshes
    spawn_height: 0.35        # m, base height at reset (default: feet on the floor)

Every field is optional: a missing field is guessed (and the guess printed). Validation
never rewrites a value; an error names the card file, the field, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CARD_CLASSES = ("arm", "quadruped", "humanoid", "wheeled")
BASES = ("fixed", "floating")
GAIN_RULES = ("natural_frequency",)
CARD_SUFFIXES = (".yaml", ".yml")


class CardError(ValueError):
    """A card field with a bad value: the message names the file, field, value and fix."""


@dataclass(frozen=True, kw_only=True)
class Gains:
    """How the loader sets the PD gains of the actuators it adds (see `gains.py`).

    `joints` maps fnmatch patterns of joint names to {"kp": .., "kd": ..}; those joints
    take these values, the others follow `rule`."""

    rule: str = "natural_frequency"
    frequency_hz: float = 10.0  # target natural frequency of each joint, Hz
    damping_ratio: float = 1.0  # 1: critical damping
    joints: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BodyCard:
    """What the robot file does not say (None: guess it). See the module docstring."""

    robot: str = ""
    name: str = ""
    body_class: str | None = None  # YAML key "class"
    base: str | None = None
    ee: str | None = None
    feet: tuple[str, ...] | None = None
    imu: str | None = None
    keyframe: str | None = None
    default_pose: dict[str, float] = field(default_factory=dict)
    armature: dict[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    gains: Gains | None = None
    package_path: tuple[str, ...] = ()
    spawn_height: float | None = None
    path: str = ""  # the card file this came from ("" if built in code), for messages

    def __post_init__(self) -> None:
        where = self.path or "body card"
        if self.body_class is not None and self.body_class not in CARD_CLASSES:
            _fail(where, "class", self.body_class, f"one of {', '.join(CARD_CLASSES)}")
        if self.base is not None and self.base not in BASES:
            _fail(where, "base", self.base, "fixed or floating")
        if self.feet is not None and (
            not self.feet or not all(isinstance(f, str) and f for f in self.feet)
        ):
            _fail(where, "feet", list(self.feet), "a list of link or site names")
        for key, value in self.default_pose.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                _fail(where, f"default_pose.{key}", value, "a number (rad or m)")
        for key, value in self.armature.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                _fail(where, f"armature.{key}", value, "a rotor inertia >= 0 (kg m^2, or kg)")
        if self.spawn_height is not None and not self.spawn_height > 0:
            _fail(where, "spawn_height", self.spawn_height, "a height in m above 0")
        g = self.gains
        if g is not None:
            if g.rule not in GAIN_RULES:
                _fail(where, "gains.rule", g.rule, f"one of {', '.join(GAIN_RULES)}")
            if not g.frequency_hz > 0:
                _fail(where, "gains.frequency_hz", g.frequency_hz, "a frequency in Hz above 0")
            if not g.damping_ratio > 0:
                _fail(
                    where, "gains.damping_ratio", g.damping_ratio, "a ratio above 0 (1: critical)"
                )
            for pattern, kpkd in g.joints.items():
                if not isinstance(kpkd, dict) or set(kpkd) - {"kp", "kd"} or "kp" not in kpkd:
                    _fail(where, f"gains.joints.{pattern}", kpkd, "{kp: N m/rad, kd: N m s/rad}")
                if not kpkd["kp"] > 0 or kpkd.get("kd", 0) < 0:
                    _fail(where, f"gains.joints.{pattern}", kpkd, "kp > 0 and kd >= 0")

    # --- helpers -------------------------------------------------------------------------
    def pose_for(self, joint: str) -> float | None:
        """The card's default position of `joint` (the last matching pattern), or None."""
        v = _last_match(self.default_pose, joint)
        return None if v is None else float(v)

    def armature_for(self, joint: str) -> float | None:
        """The card's armature of `joint` (the last matching pattern), or None."""
        v = _last_match(self.armature, joint)
        return None if v is None else float(v)

    def excluded(self, joint: str) -> bool:
        return any(fnmatch.fnmatchcase(joint, p) for p in self.exclude)

    def gains_for(self, joint: str) -> dict[str, float] | None:
        return None if self.gains is None else _last_match(self.gains.joints, joint)

    def robot_path(self) -> Path | None:
        """The robot file the card names (relative to the card's folder), else the robot
        file beside the card with its stem (`quad.yaml` -> `quad.urdf` or `quad.xml`)."""
        base = Path(self.path).parent if self.path else Path.cwd()
        if self.robot:
            return (base / self.robot).expanduser()
        if self.path:
            stem = Path(self.path).name.split(".")[0]
            for suffix in (".urdf", ".xml", ".mjcf"):
                if (base / f"{stem}{suffix}").is_file():
                    return base / f"{stem}{suffix}"
        return None

    def merged(self, **overrides: Any) -> BodyCard:
        """A copy with the given fields replaced where the value is not None (CLI options)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **values)


_YAML_KEYS = {"class": "body_class"}  # YAML key -> field name, where they differ
_FIELDS = [f.name for f in dataclasses.fields(BodyCard) if f.name != "path"]


def _last_match(patterns: dict[str, Any], name: str) -> Any:
    """The value of the last fnmatch pattern in `patterns` that matches `name`, or None."""
    found = None
    for pattern, value in patterns.items():
        if fnmatch.fnmatchcase(name, pattern):
            found = value
    return found


def _fail(where: str, name: str, value: Any, expected: str) -> None:
    key = {v: k for k, v in _YAML_KEYS.items()}.get(name, name)
    raise CardError(f"{where}: {key}: {value!r} is not valid; set it to {expected}")


def read_card(path: str | Path) -> BodyCard:
    """Read and validate a card. Raises FileNotFoundError or CardError (naming the field)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: body card not found")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise CardError(f"{path}: not valid YAML ({e}); a card is a mapping of fields") from None
    if not isinstance(doc, dict):
        raise CardError(f"{path}: a card is a YAML mapping (class: arm, ee: tool0, ...)")
    return card_from_dict(doc, str(path))


def card_from_dict(doc: dict[str, Any], path: str = "") -> BodyCard:
    where = path or "body card"
    known = [k for k in (*_YAML_KEYS, *_FIELDS) if k not in _YAML_KEYS.values()]
    values: dict[str, Any] = {}
    for key, value in doc.items():
        name = _YAML_KEYS.get(key, key)
        if name not in _FIELDS or key == "body_class":
            raise CardError(
                f"{where}: unknown field {key!r}; the card fields are {', '.join(known)}"
            )
        if value is None:
            continue
        if name == "gains":
            if not isinstance(value, dict):
                _fail(
                    where,
                    "gains",
                    value,
                    "a mapping (rule:, frequency_hz:, damping_ratio:, joints:)",
                )
            unknown = set(value) - {f.name for f in dataclasses.fields(Gains)}
            if unknown:
                _fail(
                    where, "gains", sorted(unknown), "rule, frequency_hz, damping_ratio or joints"
                )
            value = Gains(**value)
        elif name in ("feet", "exclude", "package_path"):
            value = (value,) if isinstance(value, str) else value
            if not isinstance(value, (list, tuple)):
                _fail(where, name, value, "a list of names")
            value = tuple(str(v) for v in value)
        elif name == "default_pose" and not isinstance(value, dict):
            _fail(where, name, value, "a mapping of joint name (or pattern) to position")
        elif name == "armature" and not isinstance(value, dict):
            _fail(where, name, value, "a mapping of joint name (or pattern) to rotor inertia")
        elif name in ("robot", "name", "body_class", "base", "ee", "imu", "keyframe"):
            value = str(value)
        elif name == "spawn_height":
            value = float(value)
        values[name] = value
    return BodyCard(**values, path=path)


def card_to_dict(card: BodyCard) -> dict[str, Any]:
    """The card as a YAML-ready mapping (fields left to guessing are left out)."""
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(card, name)
        if value is None or value == "" or value == () or value == {}:
            continue
        key = {v: k for k, v in _YAML_KEYS.items()}.get(name, name)
        if isinstance(value, Gains):
            value = {k: v for k, v in dataclasses.asdict(value).items() if v != {}}
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def write_card(card: BodyCard, path: str | Path, notes: dict[str, str] | None = None) -> Path:
    """Write `card` as YAML; `notes[field]` becomes a comment above the field (evidence)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# xembody body card: edit what is wrong, then `xembody bodies check` again"]
    for key, value in card_to_dict(card).items():
        note = (notes or {}).get(key)
        if note:
            lines.append(f"# {key}: {note}")
        text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False)
        lines.append(text.rstrip("\n"))
    path.write_text("\n".join(lines) + "\n")
    return path


def find_card(robot: str | Path) -> Path | None:
    """The card beside a robot file: `<stem>.card.yaml`, else `<stem>.yaml` / `.yml`."""
    robot = Path(robot)
    for name in (f"{robot.stem}.card.yaml", f"{robot.stem}.yaml", f"{robot.stem}.yml"):
        candidate = robot.with_name(name)
        if candidate.is_file() and candidate != robot:
            return candidate
    return None
