"""Load a user's robot description (MJCF `.xml`, URDF `.urdf`, or a body card `.yaml` that
names one) as an `Embodiment`, deciding what the file does not say and recording why.

MuJoCo parses both formats (`mujoco.MjSpec.from_file`). The loader then:

- reads the body card (`card.py`): the `card` argument, else `<robot>.card.yaml` or
  `<robot>.yaml` beside the file; keyword options (`body_class`, `base`, `ee`, `feet`,
  `imu`, `package_path`: the CLI's `--class/--base/--ee/--feet/--imu/--package-path`)
  replace its fields.
- handles URDF conventions: fixed-joint child links stay bodies (MuJoCo would fuse them
  away), so `tool0` or `FL_calf_foot` can be named, and each gets a site at its frame;
  visual meshes are kept for pictures (they do not collide); `package://` meshes are found
  near the file or on the package path; unreadable meshes (.dae, ...) are converted once
  (`meshes.py`); URDF velocity limits are kept on the joints.
- guesses what neither says (`guess.py`): base, class, feet, end effector, IMU, base body.
  A floating base gets a free joint (a URDF has none) and spawns with its lowest collision
  geom on the floor in the default pose (`edits.SPAWN_CLEARANCE` above it); an IMU site with
  gyro, accelerometer and orientation sensors is added at the base when there is none.
- actuators: a file with actuators keeps them, in order: position actuators give kp/kd
  (`gainprm[0]`, `-biasprm[2]`), velocity actuators give kd and make the action
  "joint_velocity", plain motors become PD position actuators. A file without actuators
  gets one PD position actuator per hinge/slide joint that the card does not `exclude`,
  with gains from the card's per-joint values, else the `kp`/`kd` arguments, else the
  natural-frequency rule (`gains.py`). Gear is taken as 1.
- effort limit: the actuator's forcerange, else the joint's actuatorfrcrange (URDF
  `effort`), else kp x `DEFAULT_EFFORT_ERROR`. Limits: the joint range; an unlimited joint
  gets `UNLIMITED_RANGE`.
- default pose: the card's `keyframe`, else the keyframe named "home" or "stand", else the
  first, else qpos0; then the card's `default_pose`; clamped into the limits. It is
  written as the "home" keyframe (PD targets in ctrl).
- a floor plane (and a light) is added when the model has none; asset paths are made
  absolute so `Embodiment.compile()` finds the meshes from the MJCF text.

The decisions, with their evidence, are in `LoadReport.decisions` (`load_report`) and in
`Embodiment.params["decisions"]`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from . import edits, gains
from .build import add_position_actuators, finish
from .card import CARD_SUFFIXES, BodyCard, CardError, card_from_dict, find_card, read_card
from .embodiment import Embodiment, JointInfo
from .guess import Decision, Guesser
from .meshes import resolve_meshes

SUFFIXES = (".xml", ".mjcf", ".urdf", *CARD_SUFFIXES)
DEFAULT_EFFORT_ERROR = {"hinge": 1.0, "slide": 0.1}  # rad, m
UNLIMITED_RANGE = {"hinge": (-math.pi, math.pi), "slide": (-1.0, 1.0)}  # rad, m
DEFAULT_VELOCITY_LIMIT = 10.0  # rad/s or m/s, for velocity actuators without a ctrlrange
HOME_KEYS = ("home", "stand")
_KINDS = {int(mujoco.mjtJoint.mjJNT_HINGE): "hinge", int(mujoco.mjtJoint.mjJNT_SLIDE): "slide"}
_JOINT_TRN = (int(mujoco.mjtTrn.mjTRN_JOINT), int(mujoco.mjtTrn.mjTRN_JOINTINPARENT))


@dataclass
class LoadReport:
    """A loaded body with how each item was decided (see `guess.Decision`)."""

    embodiment: Embodiment
    decisions: dict[str, Decision]
    card: BodyCard
    notes: list[str] = field(default_factory=list)  # converted meshes, welded joints
    gain_reasons: dict[str, str] = field(default_factory=dict)  # joint -> which bound set kp


def load_body(path: str | Path, **kwargs) -> Embodiment:
    """Load an MJCF/URDF file (or a card naming one) as an `Embodiment`; see `load_report`."""
    return load_report(path, **kwargs).embodiment


def load_report(
    path: str | Path,
    *,
    card: BodyCard | str | Path | dict | None = None,
    find: bool = True,
    name: str | None = None,
    kp: float | None = None,
    kd: float | None = None,
    floor: bool = True,
    body_class: str | None = None,
    base: str | None = None,
    ee: str | None = None,
    feet: list[str] | tuple[str, ...] | None = None,
    imu: str | None = None,
    package_path: list[str] | tuple[str, ...] | None = None,
) -> LoadReport:
    """Load a robot file and decide what it does not say (module docstring for the rules).

    `card`: a BodyCard, a card file or a dict; None looks beside the file (unless `find`
    is False). The keyword options replace card fields (they are the CLI's options).
    `kp`/`kd` set the gains of actuators the loader adds or converts; `floor=False` skips
    adding a floor plane. Raises FileNotFoundError for a missing file and ValueError
    (CardError for card fields) naming the file, the item and the fix."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"robot description not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{path}: unsupported extension {path.suffix!r}; expected one of {SUFFIXES}"
        )
    if suffix in CARD_SUFFIXES:
        card = read_card(path)
        path = card.robot_path() or path
        if path.suffix.lower() in CARD_SUFFIXES:
            raise CardError(f"{card.path}: robot: not set; set it to the robot file (robot.urdf)")
        if not path.is_file():
            raise FileNotFoundError(f"{card.path}: robot: {card.robot!r}: no such file ({path})")
    card = _the_card(card, path, find)
    options = dict(
        body_class=body_class, base=base, ee=ee, imu=imu,
        feet=tuple(feet) if feet else None,
        package_path=tuple(package_path) if package_path else None,
    )  # fmt: skip
    how = {("class" if k == "body_class" else k): "option" for k, v in options.items() if v}
    card = card.merged(**options)
    spec, velocity = _parse(path)
    folder = path.resolve().parent
    card_dir = Path(card.path).parent if card.path else Path.cwd()
    # --package-path folders are relative to the working folder, the card's to the card
    pkg = [Path(p) for p in package_path or ()] or [card_dir / p for p in card.package_path]
    notes = [f"converted mesh {n}" for n in resolve_meshes(spec, path, folder, pkg)]
    _absolute_asset_dirs(spec, folder)
    _name_unnamed(spec)
    notes += _set_armature(spec, card, path)
    if spec.option.integrator == mujoco.mjtIntegrator.mjINT_EULER:
        # PD damping (actuator kv) is only integrated implicitly by implicitfast
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        notes.append("integrator Euler -> implicitfast (implicit PD damping)")
    model = _compile(spec, path)
    movable = [j for j in range(model.njnt) if model.jnt_type[j] in _KINDS]
    if not movable:
        raise ValueError(f"{path}: the model has no movable (hinge or slide) joints to actuate")
    qpos, pose_source, from_key = _default_pose(model, card, path)
    decisions = Guesser(model, qpos, card, how).run()
    _check_names(model, decisions, card, path)

    changed = edits.set_base(spec, model, decisions["base"].value == "floating", path)
    sensors = edits.add_sites(spec, model, decisions)
    for joint in [model.joint(j).name for j in movable if card.excluded(model.joint(j).name)]:
        notes.append(edits.weld(spec, model, joint, qpos))
        changed = True
    if changed:
        for key in list(spec.keys):
            spec.delete(key)
    model1 = _compile(spec, path)
    qpos1 = edits.carry_pose(model, qpos, model1)
    spawn = ""
    if decisions["base"].value == "floating" and (changed or not from_key):
        spawn = edits.spawn(model1, qpos1, card.spawn_height)
        notes.append(spawn)
    movable1 = [j for j in range(model1.njnt) if model1.jnt_type[j] in _KINDS]
    reasons: dict[str, str] = {}
    if model1.nu:
        joints, action_kind, note = _read_actuators(spec, model1, qpos1, kp, kd, path)
    else:
        foot_bodies = [model1.site_bodyid[model1.site(s).id] for s in edits.foot_sites(model1)]
        joints, reasons = _added_joints(
            model1, qpos1, movable1, card, kp, kd, velocity, foot_bodies
        )
        action_kind, note = "joint_position", f"added {len(joints)} PD position actuators"
        add_position_actuators(spec, joints)
    edits.add_home_key(spec, model1, qpos1, joints, action_kind)
    if floor and not np.any(model1.geom_type == mujoco.mjtGeom.mjGEOM_PLANE):
        edits.add_floor(spec, model1)
    cls = decisions["class"].value
    params = {
        "actuators": note,
        "default_pose": pose_source,
        "card": card.path,
        "decisions": {k: d.line(k) for k, d in decisions.items()},
    }
    if spawn:
        params["spawn"] = spawn
    try:
        emb = finish(
            spec,
            name=name or card.name or spec.modelname or path.stem,
            body_class=cls or "custom",
            joints=joints,
            sensors=sensors,
            floating_base=decisions["base"].value == "floating",
            source=str(path),
            params=params,
            action_kind=action_kind,
        )
    except ValueError as e:
        raise ValueError(f"{path}: the edited model does not compile: {e}") from e
    return LoadReport(emb, decisions, card, notes, reasons)


def _the_card(card, path: Path, find: bool) -> BodyCard:
    if isinstance(card, BodyCard):
        return card
    if isinstance(card, dict):
        return card_from_dict(card)
    if card is not None:
        return read_card(card)
    found = find_card(path) if find else None
    return read_card(found) if found else BodyCard()


def _parse(path: Path) -> tuple[mujoco.MjSpec, dict[str, float]]:
    """The spec of the file; for a URDF also its joints' velocity limits (MuJoCo drops them)."""
    velocity: dict[str, float] = {}
    try:
        if path.suffix.lower() != ".urdf":
            return mujoco.MjSpec.from_file(str(path)), velocity
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            raise ValueError(f"{path}: not valid XML: {e}") from None
        for j in root.iter("joint"):
            lim = j.find("limit")
            if lim is not None and lim.get("velocity") and j.get("name"):
                velocity[j.get("name")] = float(lim.get("velocity"))
        # Keep fixed-joint child links as bodies (frames to name), and visual geoms.
        mj = root.find("mujoco")
        if mj is None:
            mj = ET.Element("mujoco")
            root.insert(0, mj)
        compiler = mj.find("compiler")
        if compiler is None:
            compiler = ET.SubElement(mj, "compiler")
        compiler.set("fusestatic", "false")
        compiler.set("discardvisual", "false")
        compiler.set("strippath", "false")
        spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
        spec.modelname = spec.modelname or path.stem
        return spec, velocity
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: MuJoCo could not parse this file: {e}") from e


def _compile(spec: mujoco.MjSpec, path: Path) -> mujoco.MjModel:
    try:
        return spec.compile()
    except ValueError as e:
        raise ValueError(f"{path}: MuJoCo could not compile this model: {e}") from e


def _absolute_asset_dirs(spec: mujoco.MjSpec, folder: Path) -> None:
    """Make mesh/texture folders and hfield/skin files absolute, for `to_xml()` output."""
    base = Path(spec.modelfiledir or folder)
    spec.meshdir = str((base / spec.meshdir).resolve())
    spec.texturedir = str((base / spec.texturedir).resolve())
    for asset in [*spec.hfields, *spec.skins]:
        if asset.file and not Path(asset.file).is_absolute():
            asset.file = str((base / asset.file).resolve())


def _default_pose(
    model: mujoco.MjModel, card: BodyCard, path: Path
) -> tuple[np.ndarray, str, bool]:
    """qpos of the default pose, where it came from, and whether a file keyframe gave it."""
    names = [model.key(k).name for k in range(model.nkey)]
    if card.keyframe is not None:
        if card.keyframe not in names:
            raise CardError(
                f"{card.path or path}: keyframe: {card.keyframe!r} is not a keyframe of "
                f"{path.name}; set it to one of {names or 'none (use default_pose:)'}"
            )
        key = names.index(card.keyframe)
    else:
        key = _pick_key(model)
    qpos = model.key_qpos[key].copy() if key is not None else model.qpos0.copy()
    source = f"keyframe {model.key(key).name or key!r}" if key is not None else "qpos0"
    joints = [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] in _KINDS]
    _check_patterns(card, "default_pose", card.default_pose, joints, path)
    posed = 0
    for j in range(model.njnt):
        v = card.pose_for(model.joint(j).name) if model.jnt_type[j] in _KINDS else None
        if v is not None:
            qpos[model.jnt_qposadr[j]] = v
            posed += 1
    if posed:
        source += f" + card default_pose ({posed} joints)"
    for j in range(model.njnt):
        if model.jnt_type[j] in _KINDS:
            _, rng = _joint_range(model, j)
            a = model.jnt_qposadr[j]
            qpos[a] = np.clip(qpos[a], *rng)
    return qpos, source, key is not None


def _match(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def _check_names(
    model: mujoco.MjModel, decisions: dict[str, Decision], card: BodyCard, path: Path
) -> None:
    """Names from the card or options must be a site or a body of the model."""
    sites = {model.site(s).name for s in range(model.nsite)}
    bodies = {model.body(b).name for b in range(1, model.nbody)}
    for item in ("ee", "imu", "feet"):
        d = decisions[item]
        if d.how not in ("card", "option") or d.value is None:
            continue
        where = card.path if d.how == "card" else f"{path} (--{item})"
        for n in d.value if isinstance(d.value, list) else [d.value]:
            if n not in sites | bodies:
                flag = f"--{item} LINK" if item != "feet" else "--feet LINK [LINK ...]"
                frames = sorted(b for b in bodies if model.body_jntnum[model.body(b).id] == 0)
                raise CardError(
                    f"{where}: {item}: {n!r} is neither a link (body) nor a site of {path.name}; "
                    f"set {item}: in the card, or {flag}; frames without joints: "
                    f"{', '.join(frames[:12]) or 'none'}"
                )


def _added_joints(
    model, qpos, movable, card: BodyCard, kp, kd, velocity, feet
) -> tuple[list[JointInfo], dict[str, str]]:
    """JointInfo per movable joint for added actuators: card gains, kp/kd, else the rule."""
    effort = [_frc(model, j) for j in movable]
    rule = card.gains
    kps, kds, why = gains.natural_frequency_gains(
        model, qpos, movable, effort,
        frequency_hz=rule.frequency_hz if rule else 10.0,
        damping_ratio=rule.damping_ratio if rule else 1.0,
        feet=feet,
    )  # fmt: skip
    joints, reasons = [], {}
    for i, j in enumerate(movable):
        name = model.joint(j).name
        given = card.gains_for(name)
        if given:
            k, d, reasons[name] = given["kp"], given.get("kd", kds[i]), "card gains.joints"
        elif kp is not None:
            k, d, reasons[name] = kp, kd if kd is not None else kds[i], "kp argument"
        else:
            k, d, reasons[name] = kps[i], kd if kd is not None else kds[i], why[i]
        joints.append(
            _joint_info(model, j, qpos, k, d, velocity_limit=velocity.get(name, float("inf")))
        )
    return joints, reasons


def _set_armature(spec: mujoco.MjSpec, card: BodyCard, path: Path) -> list[str]:
    """The card's `armature:` on the joints it names, before anything is compiled (the
    gain rule reads it); a pattern that matches no hinge or slide joint is an error."""
    joints = [j for j in spec.joints if int(j.type) in _KINDS]
    _check_patterns(card, "armature", card.armature, [j.name for j in joints], path)
    values = {j.name: card.armature_for(j.name) for j in joints}
    for j in joints:
        if values[j.name] is not None:
            j.armature = values[j.name]
    n = sum(v is not None for v in values.values())
    return [f"armature from the card on {n} joints"] if n else []


def _check_patterns(card: BodyCard, field: str, patterns, joints: list[str], path: Path) -> None:
    """Every joint-name pattern of card field `field` matches a joint, or a CardError."""
    for pattern in patterns:
        if not any(_match(n, pattern) for n in joints):
            raise CardError(
                f"{card.path or 'body card'}: {field}: {pattern!r} matches no joint of "
                f"{path.name}; set it to joint names (or patterns) among {', '.join(joints)}"
            )


def _name_unnamed(spec: mujoco.MjSpec) -> None:
    """Give unnamed hinge/slide joints a name, so actuators and JointInfo can refer to them."""
    taken = {j.name for j in spec.joints}
    k = 0
    for joint in spec.joints:
        if not joint.name and int(joint.type) in _KINDS:
            while f"joint{k}" in taken:
                k += 1
            joint.name = f"joint{k}"
            taken.add(joint.name)


def _pick_key(model: mujoco.MjModel) -> int | None:
    names = [model.key(k).name for k in range(model.nkey)]
    for want in HOME_KEYS:
        if want in names:
            return names.index(want)
    return 0 if model.nkey else None


def _joint_range(
    model: mujoco.MjModel, j: int, ctrl: tuple[float, float] | None = None
) -> tuple[str, tuple[float, float]]:
    kind = _KINDS[model.jnt_type[j]]
    if model.jnt_limited[j]:
        return kind, (float(model.jnt_range[j, 0]), float(model.jnt_range[j, 1]))
    return kind, ctrl or UNLIMITED_RANGE[kind]


def _joint_info(
    model: mujoco.MjModel,
    j: int,
    qpos: np.ndarray,
    kp: float | None,
    kd: float | None,
    *,
    effort: float | None = None,
    ctrl: tuple[float, float] | None = None,
    velocity_limit: float = float("inf"),
) -> JointInfo:
    """JointInfo for joint `j`, with default gains/effort where not given."""
    kind, rng = _joint_range(model, j, ctrl)
    if kp is None or kd is None:  # the natural-frequency rule (gains.py)
        k, d, _ = gains.natural_frequency_gains(model, qpos, [j], [effort or _frc(model, j)])
        kp = float(k[0]) if kp is None else kp
        kd = float(d[0]) if kd is None else kd
    effort = effort or _frc(model, j) or max(kp * DEFAULT_EFFORT_ERROR[kind], 1e-3)
    default = float(np.clip(qpos[model.jnt_qposadr[j]], *rng))
    return JointInfo(
        name=model.joint(j).name,
        kind=kind,
        range=rng,
        default=default,
        kp=float(kp),
        kd=float(kd),
        effort_limit=effort,
        velocity_limit=velocity_limit,
    )


def _read_actuators(
    spec: mujoco.MjSpec,
    model: mujoco.MjModel,
    qpos: np.ndarray,
    kp: float | None,
    kd: float | None,
    path: Path,
) -> tuple[list[JointInfo], str, str]:
    """JointInfo per actuator in order; motors become PD position actuators in `spec`."""
    joints: list[JointInfo] = []
    kinds: set[str] = set()
    converted = 0
    for i in range(model.nu):
        j = int(model.actuator_trnid[i, 0])
        if model.actuator_trntype[i] not in _JOINT_TRN or model.jnt_type[j] not in _KINDS:
            raise ValueError(
                f"{path}: actuator {model.actuator(i).name or i!r} does not drive a hinge or "
                "slide joint; only joint actuators are supported"
            )
        gain, bias = model.actuator_gainprm[i], model.actuator_biasprm[i]
        ctrl = None
        if model.actuator_ctrllimited[i]:
            ctrl = (float(model.actuator_ctrlrange[i, 0]), float(model.actuator_ctrlrange[i, 1]))
        gear = abs(float(model.actuator_gear[i, 0])) or 1.0
        force = (
            float(np.abs(model.actuator_forcerange[i]).max()) * gear
            if model.actuator_forcelimited[i]
            else None
        )
        fixed = model.actuator_gaintype[i] == mujoco.mjtGain.mjGAIN_FIXED
        affine = model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_AFFINE
        if fixed and affine and gain[0] > 0 and math.isclose(bias[1], -gain[0]):
            kinds.add("joint_position")
            joints.append(_joint_info(model, j, qpos, gain[0], -bias[2], effort=force, ctrl=ctrl))
        elif fixed and affine and gain[0] > 0 and bias[1] == 0 and math.isclose(bias[2], -gain[0]):
            kinds.add("joint_velocity")
            vmax = max(map(abs, ctrl)) if ctrl else DEFAULT_VELOCITY_LIMIT
            effort = force or _frc(model, j) or gain[0] * vmax
            joints.append(
                _joint_info(model, j, qpos, 0.0, gain[0], effort=effort, velocity_limit=vmax)
            )
        elif fixed and model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_NONE:
            kinds.add("joint_position")
            motor = max(map(abs, ctrl)) * gear if ctrl else None
            info = _joint_info(model, j, qpos, kp, kd, effort=force or motor)
            act = spec.actuators[i]
            act.set_to_position(kp=info.kp, kv=info.kd)
            act.gear = [1.0, 0, 0, 0, 0, 0]
            act.ctrlrange, act.ctrllimited = list(info.range), mujoco.mjtLimited.mjLIMITED_TRUE
            act.forcerange = [-info.effort_limit, info.effort_limit]
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            joints.append(info)
            converted += 1
        else:
            raise ValueError(
                f"{path}: actuator {model.actuator(i).name or i!r} is neither a position, "
                "velocity nor motor actuator"
            )
    if len(kinds) > 1:
        raise ValueError(f"{path}: mixes position and velocity actuators; use one kind")
    note = f"read {model.nu} actuators from the file"
    if converted:
        note += f", converted {converted} motors to PD position actuators"
    return joints, kinds.pop(), note


def _frc(model: mujoco.MjModel, j: int) -> float | None:
    return float(np.abs(model.jnt_actfrcrange[j]).max()) if model.jnt_actfrclimited[j] else None
