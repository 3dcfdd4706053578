"""Load a user's robot description (MJCF `.xml` or URDF `.urdf`) as an `Embodiment`.

MuJoCo parses both formats (`mujoco.MjSpec.from_file`); the file's own compiler settings
are kept. The loader then fills in what xembody needs:

- Actuators. A file with actuators keeps them, in order: position actuators give kp/kd
  (`gainprm[0]`, `-biasprm[2]`), velocity actuators give kd and make the action
  "joint_velocity", plain motors are turned into PD position actuators with the default
  gains below. A file without actuators gets one PD position actuator per hinge/slide
  joint (`build.add_position_actuators`). Gear is taken as 1.
- Default gains (added or converted actuators): kp = `DEFAULT_KP_PER_KG` x the mass the
  joint moves (its body's subtree mass), at least `MIN_KP`; kd = `KD_RATIO` x kp, which is
  near critical damping for a limb of ~0.3 m. `kp`/`kd` arguments replace these.
- Effort limit: the actuator's forcerange, else the joint's actuatorfrcrange, else
  kp x `DEFAULT_EFFORT_ERROR` (the PD force at a 1 rad / 0.1 m error).
- Limits: the joint range; an unlimited joint gets `UNLIMITED_RANGE` (hinge: (-pi, pi)).
- Default pose: the keyframe named "home" or "stand", else the first keyframe, else
  qpos0; clamped into the limits. A "home" keyframe is added when missing.
- A floor plane (and a light) is added when the model has none. Relative asset folders
  are made absolute so that `Embodiment.compile()` finds the meshes from the MJCF text;
  URDF `package://` mesh paths are looked up next to the file and in its parent folders.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import mujoco
import numpy as np

from . import build
from .build import IMU_SENSORS, add_position_actuators, finish
from .embodiment import Embodiment, JointInfo, SensorLayout

SUFFIXES = (".xml", ".mjcf", ".urdf")
DEFAULT_KP_PER_KG = {"hinge": 40.0, "slide": 400.0}  # N m/rad per kg, N/m per kg
MIN_KP = {"hinge": 1.0, "slide": 10.0}
KD_RATIO = 0.1  # kd = KD_RATIO * kp, in s
DEFAULT_EFFORT_ERROR = {"hinge": 1.0, "slide": 0.1}  # rad, m
UNLIMITED_RANGE = {"hinge": (-math.pi, math.pi), "slide": (-1.0, 1.0)}  # rad, m
DEFAULT_VELOCITY_LIMIT = 10.0  # rad/s or m/s, for velocity actuators without a ctrlrange
HOME_KEYS = ("home", "stand")
_EE_PATTERN = re.compile(r"(^|_)(ee|eef|tcp)(_|$)|end_?effector", re.IGNORECASE)
_KINDS = {int(mujoco.mjtJoint.mjJNT_HINGE): "hinge", int(mujoco.mjtJoint.mjJNT_SLIDE): "slide"}
_JOINT_TRN = (int(mujoco.mjtTrn.mjTRN_JOINT), int(mujoco.mjtTrn.mjTRN_JOINTINPARENT))


def load_body(
    path: str | Path,
    *,
    body_class: str = "custom",
    name: str | None = None,
    kp: float | None = None,
    kd: float | None = None,
    floor: bool = True,
) -> Embodiment:
    """Load an MJCF or URDF file as an `Embodiment` (see the module docstring for rules).

    `kp`/`kd` set the gains of actuators the loader adds or converts; `floor=False` skips
    adding a floor plane. Raises FileNotFoundError for a missing file and ValueError for an
    unsupported extension, a file MuJoCo rejects, or a model with nothing to actuate.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"robot description not found: {path}")
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(
            f"{path}: unsupported extension {path.suffix!r}; expected one of {SUFFIXES}"
        )
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except ValueError as e:
        raise ValueError(f"{path}: MuJoCo could not parse this file: {e}") from e
    folder = path.resolve().parent
    if path.suffix.lower() == ".urdf":
        _resolve_package_paths(spec, folder)
    _absolute_asset_dirs(spec, folder)
    _name_unnamed(spec)
    model = _compile(spec, path)

    movable = [j for j in range(model.njnt) if model.jnt_type[j] in _KINDS]
    if not movable:
        raise ValueError(f"{path}: the model has no movable (hinge or slide) joints to actuate")
    key = _pick_key(model)
    qpos = model.key_qpos[key].copy() if key is not None else model.qpos0.copy()
    pose_source = f"keyframe {model.key(key).name or key!r}" if key is not None else "qpos0"

    if model.nu:
        joints, action_kind, note = _read_actuators(spec, model, qpos, kp, kd, path)
    else:
        joints = [_joint_info(model, j, qpos, kp, kd) for j in movable]
        action_kind, note = "joint_position", f"added {len(joints)} PD position actuators"
        add_position_actuators(spec, joints)
    _add_home_key(spec, model, key, qpos, joints, action_kind)
    if floor and not np.any(model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE):
        _add_floor(spec, model)

    sensors = _sensor_layout(spec, model)
    free = model.jnt_type == mujoco.mjtJoint.mjJNT_FREE
    floating = bool(np.any(free & (model.body_parentid[model.jnt_bodyid] == 0)))
    try:
        return finish(
            spec,
            name=name or spec.modelname or path.stem,
            body_class=body_class,
            joints=joints,
            sensors=sensors,
            floating_base=floating,
            source=str(path),
            params={"actuators": note, "default_pose": pose_source},
            action_kind=action_kind,
        )
    except ValueError as e:
        raise ValueError(f"{path}: the edited model does not compile: {e}") from e


def _compile(spec: mujoco.MjSpec, path: Path) -> mujoco.MjModel:
    try:
        return spec.compile()
    except ValueError as e:
        raise ValueError(f"{path}: MuJoCo could not compile this model: {e}") from e


def _resolve_package_paths(spec: mujoco.MjSpec, folder: Path) -> None:
    """Point URDF `package://pkg/sub/file` meshes at a file found near the URDF."""
    for mesh in spec.meshes:
        ref = mesh.file
        for prefix in ("package://", "file://"):
            if ref.startswith(prefix):
                rest = ref[len(prefix) :]
                sub = rest.partition("/")[2]
                roots = [folder, *list(folder.parents)[:3]]
                found = [r / c for r in roots for c in (rest, sub) if c and (r / c).is_file()]
                if prefix == "file://" and Path(rest).is_absolute():
                    found.insert(0, Path(rest))
                if found:
                    mesh.file = str(found[0].resolve())


def _absolute_asset_dirs(spec: mujoco.MjSpec, folder: Path) -> None:
    """Make mesh/texture folders and hfield/skin files absolute, for `to_xml()` output."""
    base = Path(spec.modelfiledir or folder)
    spec.meshdir = str((base / spec.meshdir).resolve())
    spec.texturedir = str((base / spec.texturedir).resolve())
    for asset in [*spec.hfields, *spec.skins]:
        if asset.file and not Path(asset.file).is_absolute():
            asset.file = str((base / asset.file).resolve())


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
    if kp is None:
        mass = float(model.body_subtreemass[model.jnt_bodyid[j]])
        kp = max(DEFAULT_KP_PER_KG[kind] * mass, MIN_KP[kind])
    kd = KD_RATIO * kp if kd is None else kd
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


def _add_home_key(
    spec: mujoco.MjSpec,
    model: mujoco.MjModel,
    key: int | None,
    qpos: np.ndarray,
    joints: list[JointInfo],
    action_kind: str,
) -> None:
    """Add a "home" keyframe (default pose, PD targets in ctrl) unless one exists."""
    if key is not None and model.key(key).name == "home":
        return
    home = qpos.copy()
    for info in joints:
        home[model.jnt_qposadr[model.joint(info.name).id]] = info.default
    spec.add_key(name="home", qpos=home.tolist())
    if action_kind == "joint_position" and len(spec.actuators) == len(joints):
        spec.keys[-1].ctrl = [info.default for info in joints]


def _add_floor(spec: mujoco.MjSpec, model: mujoco.MjModel) -> None:
    """A checkered floor plane at z=0 (and a light when the model has none)."""
    build.add_floor(spec, prefix="xembody_")
    if model.nlight == 0:
        spec.worldbody.add_light(name="xembody_sun", pos=[0, 0, 4], dir=[0, 0, -1])


def _sensor_layout(spec: mujoco.MjSpec, model: mujoco.MjModel) -> SensorLayout:
    """IMU site (named *imu*, with IMU sensors added if absent), base body, ee site, camera."""
    sites = [model.site(s).name for s in range(model.nsite)]
    imu = next((s for s in sites if "imu" in s.lower()), None)
    taken = {model.sensor(s).name for s in range(model.nsensor)}
    if imu is not None and not taken & set(IMU_SENSORS):
        site, types = mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtSensor
        kinds = (types.mjSENS_GYRO, types.mjSENS_ACCELEROMETER, types.mjSENS_FRAMEQUAT)
        for sensor_name, kind in zip(IMU_SENSORS, kinds, strict=True):
            spec.add_sensor(name=sensor_name, type=kind, objtype=site, objname=imu)
    roots = [b for b in range(1, model.nbody) if model.body_parentid[b] == 0]
    fixed = mujoco.mjtCamLight.mjCAMLIGHT_FIXED  # onboard: fixed to a robot body
    cams = [
        model.camera(c).name
        for c in range(model.ncam)
        if model.cam_bodyid[c] != 0 and model.cam_mode[c] == fixed
    ]
    return SensorLayout(
        imu_site=imu,
        base_body=(model.body(roots[0]).name or None) if roots else None,
        ee_site=next((s for s in sites if _EE_PATTERN.search(s)), None),
        camera=next((c for c in cams if c), None),
    )
