"""Physical checks of a body on its own PD gains (what `xembody bodies check` runs).

- hold (fixed base): released `RELEASE_OFFSET` rad (or m) away from the default pose, the
  PD targets at the default pose, after `seconds` the largest joint error must be <=
  `HOLD_ERROR` and the largest joint speed < `HOLD_SPEED` (arms: 0.05 rad, 0.1 rad/s).
  Velocity-actuated bodies (wheeled bases) hold zero speed; only the speed is judged.
- stand (floating base): from the home keyframe (feet on the floor), on PD at the default
  pose, the base height must stay within `STAND_TOLERANCE` of its start for `seconds`;
  otherwise the check says when it fell (below that band, or tilted past `FALL_TILT`).
- divergence, counted honestly: a non-finite state, or any MuJoCo instability warning
  (bad qacc/qpos/qvel: MuJoCo resets the data and carries on, which would hide it).

Each check returns a plain dict: name, passed, the figures and a one-line message.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from .embodiment import Embodiment

HOLD_ERROR = 0.05  # rad (m for slides) after the hold
HOLD_SPEED = 0.1  # rad/s (m/s) after the hold
RELEASE_OFFSET = 0.05  # rad (m) away from the default pose at the start of the hold
STAND_TOLERANCE = 0.15  # fraction of the start height
FALL_TILT = math.radians(60)  # base tilt counted as a fall
_DIVERGENCE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
)


def divergences(data: mujoco.MjData) -> int:
    """MuJoCo instability warnings so far, plus one for a non-finite state."""
    n = sum(int(data.warning[int(w)].number) for w in _DIVERGENCE_WARNINGS)
    finite = np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()
    return n + (0 if finite else 1)


def _home(model: mujoco.MjModel) -> mujoco.MjData:
    data = mujoco.MjData(model)
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        mujoco.mj_resetDataKeyframe(model, data, key)
    mujoco.mj_forward(model, data)
    return data


def hold(emb: Embodiment, seconds: float = 2.0) -> dict:
    """Fixed base: released near the default pose, does PD bring it back and keep it?"""
    model = emb.compile()
    data = _home(model)
    jid = [model.joint(n).id for n in emb.joint_names]
    qadr, vadr = model.jnt_qposadr[jid], model.jnt_dofadr[jid]
    target = emb.default_pose
    position = emb.action.kind == "joint_position"
    lo, hi = (np.array([j.range[k] for j in emb.joints]) for k in (0, 1))
    if position:
        data.qpos[qadr] = np.clip(target + RELEASE_OFFSET, lo, hi)
        data.ctrl[:] = target
    else:
        data.ctrl[:] = 0.0
    mujoco.mj_forward(model, data)
    steps = int(round(seconds / model.opt.timestep))
    peak = 0.0
    for _ in range(steps):
        mujoco.mj_step(model, data)
        peak = max(peak, float(np.abs(data.qvel[vadr]).max()))
    error = float(np.abs(data.qpos[qadr] - target).max()) if position else 0.0
    speed = float(np.abs(data.qvel[vadr]).max())
    worst = emb.joint_names[int(np.argmax(np.abs(data.qpos[qadr] - target)))]
    n_div = divergences(data)
    passed = n_div == 0 and error <= HOLD_ERROR and speed < HOLD_SPEED
    msg = (
        f"holds the default pose: max joint error {error:.4f} (<= {HOLD_ERROR}), "
        f"speed {speed:.4f} (< {HOLD_SPEED}) after {seconds:g} s"
        if passed
        else f"does not hold the default pose after {seconds:g} s: max joint error {error:.4f} "
        f"at {worst!r} (<= {HOLD_ERROR}), speed {speed:.4f} (< {HOLD_SPEED}), "
        f"{n_div} divergences; raise kp/kd (card gains:) or check the effort limits"
    )
    return {
        "name": "hold",
        "passed": passed,
        "max_joint_error": error,
        "max_joint_speed": speed,
        "peak_joint_speed": peak,
        "worst_joint": worst,
        "divergences": n_div,
        "seconds": seconds,
        "message": msg,
    }


def stand(emb: Embodiment, seconds: float = 2.0) -> dict:
    """Floating base on the floor: does it stand on PD at the default pose?"""
    model = emb.compile()
    data = _home(model)
    if emb.action.kind == "joint_position":
        data.ctrl[:] = emb.default_pose
    base = model.body(emb.sensors.base_body).id if emb.sensors.base_body else 1
    start = float(data.xpos[base][2])
    steps = int(round(seconds / model.opt.timestep))
    fell_at, min_h = None, start
    for k in range(steps):
        mujoco.mj_step(model, data)
        h = float(data.xpos[base][2])
        min_h = min(min_h, h)
        up = float(data.xmat[base][8])  # z of the base's z axis
        off = abs(h - start) > STAND_TOLERANCE * start or up < math.cos(FALL_TILT)
        if fell_at is None and (off or not np.isfinite(h)):
            fell_at = (k + 1) * model.opt.timestep
    end = float(data.xpos[base][2])
    n_div = divergences(data)
    passed = fell_at is None and n_div == 0
    msg = (
        f"stands: base height {end:.3f} m from {start:.3f} m (within {STAND_TOLERANCE:.0%}) "
        f"for {seconds:g} s"
        if passed
        else (f"falls after {fell_at:.2f} s" if fell_at is not None else "stands but diverges")
        + f": base height {end:.3f} m from {start:.3f} m, {n_div} divergences; check the "
        "default pose (card default_pose:) and the gains (card gains:)"
    )
    return {
        "name": "stand",
        "passed": passed,
        "start_height": start,
        "end_height": end,
        "min_height": min_h,
        "fell_after_s": fell_at,
        "divergences": n_div,
        "seconds": seconds,
        "message": msg,
    }


def run_checks(emb: Embodiment, seconds: float = 2.0) -> list[dict]:
    """The checks that apply to `emb`: stand for floating bases, hold for fixed ones."""
    return [stand(emb, seconds) if emb.floating_base else hold(emb, seconds)]
