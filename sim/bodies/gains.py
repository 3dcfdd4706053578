"""PD gains that hold a loaded robot: the natural-frequency rule.

Each joint is treated as a second-order system: the inertia it moves, `I`, on a spring
`kp` and damper `kd`. Given a target natural frequency `w = 2 pi f` and damping ratio
`zeta` (the card's `gains:`; default 10 Hz, critically damped):

    I    = M[i, i], the joint's armature (reflected rotor inertia) plus the inertia of
           everything it moves about its axis with the other joints held: the largest
           over the default pose and `POSES` poses drawn within the joint limits (an arm's
           base joint moves far more inertia stretched out than standing up)
    kp   = I w^2                       the spring that rings at f
    kp  >= tau_load / HOLD_ERROR       stiff enough that the static load sags it at most
                                       HOLD_ERROR (tau_load: the worst-case gravity torque
                                       of the subtree about the axis over those poses; for
                                       legged robots
                                       also the torque that carries the robot's weight,
                                       shared by the feet, in the default pose)
    kp  <= I' (STABLE_W_DT / dt)^2     no stiffer than the timestep integrates stably (I':
                                       the inertia felt with the other joints free,
                                       1 / (M^-1)[i, i], the smallest over those poses)
    kp  <= effort / SATURATION_ERROR   past it the motor saturates within that error anyway
    kd   = 2 zeta sqrt(kp I)           the damping ratio at the kp finally chosen

The rule uses the file's inertias, armature and effort limits only; velocity limits are
recorded on the joints (`JointInfo.velocity_limit`). Files with their own position
actuators keep their gains. This replaces the old kp-per-kg rule, which gave a 29-joint
humanoid gains its light links could not integrate stably and arms gains too soft to hold
against gravity.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

HOLD_ERROR = 0.02  # rad (m for slides): static sag allowed under the load
STABLE_W_DT = 0.5  # largest w * timestep allowed (semi-implicit Euler is stable below 2)
SATURATION_ERROR = 0.02  # rad (m): kp beyond effort / this only saturates sooner
MIN_INERTIA = 1e-6  # kg m^2: a joint moving nothing still gets a finite gain
POSES = 8  # random poses (besides the default) over which inertia and gravity are taken
_HINGE_SLIDE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def natural_frequency_gains(
    model: mujoco.MjModel,
    qpos: np.ndarray,
    joint_ids: list[int],
    effort: list[float | None],
    *,
    frequency_hz: float = 10.0,
    damping_ratio: float = 1.0,
    feet: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """kp, kd per joint of `joint_ids` and a one-line reason per joint (which bound set kp).

    `qpos` is the default pose, `effort[i]` the joint's effort limit (None: unbounded),
    `feet` the body ids that carry a floating robot's weight (None or empty: fixed base)."""
    data = mujoco.MjData(model)
    dof = [int(model.jnt_dofadr[j]) for j in joint_ids]
    full = np.zeros((model.nv, model.nv))
    inertia, felt, gravity = np.zeros(len(dof)), np.full(len(dof), np.inf), np.zeros(len(dof))
    for pose in _poses(model, qpos):
        data.qpos[:] = pose
        mujoco.mj_forward(model, data)
        mujoco.mj_fullM(model, data, full)
        inertia = np.maximum(inertia, full[dof, dof])
        felt = np.minimum(felt, 1.0 / np.diag(np.linalg.inv(full))[dof])
        gravity = np.maximum(gravity, _gravity_load(model, data, joint_ids))
    inertia, felt = np.maximum(inertia, MIN_INERTIA), np.maximum(felt, MIN_INERTIA)
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    load = gravity + _weight_load(model, data, dof, feet or [])
    w = 2 * math.pi * frequency_hz
    w_max = STABLE_W_DT / model.opt.timestep
    kp, kd, why = np.zeros(len(dof)), np.zeros(len(dof)), []
    for i in range(len(dof)):
        k, reason = inertia[i] * w * w, f"I={inertia[i]:.3g} at {frequency_hz:g} Hz"
        if load[i] / HOLD_ERROR > k:
            k, reason = load[i] / HOLD_ERROR, f"load {load[i]:.3g} N m within {HOLD_ERROR} rad"
        if k > felt[i] * w_max**2:
            k, reason = felt[i] * w_max**2, f"timestep bound (w dt <= {STABLE_W_DT})"
        if effort[i] and k > effort[i] / SATURATION_ERROR:
            k, reason = effort[i] / SATURATION_ERROR, f"effort {effort[i]:.3g} bound"
        kp[i] = k
        kd[i] = 2 * damping_ratio * math.sqrt(k * inertia[i])
        why.append(reason)
    return kp, kd, why


def _poses(model: mujoco.MjModel, qpos: np.ndarray) -> list[np.ndarray]:
    """The default pose and `POSES` poses drawn uniformly within the joint limits (seeded)."""
    rng = np.random.default_rng(0)
    out = [qpos.copy()]
    movable = [j for j in range(model.njnt) if model.jnt_type[j] in _HINGE_SLIDE]
    for _ in range(POSES):
        q = qpos.copy()
        for j in movable:
            lo, hi = model.jnt_range[j] if model.jnt_limited[j] else (-math.pi, math.pi)
            q[model.jnt_qposadr[j]] = rng.uniform(lo, hi)
        out.append(q)
    return out


def _gravity_load(model: mujoco.MjModel, data: mujoco.MjData, joint_ids: list[int]) -> np.ndarray:
    """Worst-case gravity torque of each joint's subtree: m g times the distance of the
    subtree's centre of mass from the joint axis, scaled by how horizontal the axis is."""
    g = np.asarray(model.opt.gravity)
    gn = float(np.linalg.norm(g)) or 1.0
    out = np.zeros(len(joint_ids))
    for i, j in enumerate(joint_ids):
        b = model.jnt_bodyid[j]
        mass = model.body_subtreemass[b]
        axis = data.xaxis[j]
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE:
            out[i] = mass * abs(float(axis @ g))  # the weight along the slide
            continue
        r = data.subtree_com[b] - data.xanchor[j]
        r_perp = float(np.linalg.norm(r - (r @ axis) * axis))
        horizontal = math.sqrt(max(0.0, 1.0 - (float(axis @ g) / gn) ** 2))
        out[i] = mass * gn * r_perp * horizontal
    return out


def _weight_load(
    model: mujoco.MjModel, data: mujoco.MjData, dof: list[int], feet: list[int]
) -> np.ndarray:
    """|J_foot^T f| per joint when the feet carry the robot's weight equally (standing)."""
    if not feet:
        return np.zeros(len(dof))
    weight = model.body_subtreemass[0] * float(np.linalg.norm(model.opt.gravity))
    f = np.array([0.0, 0.0, weight / len(feet)])
    tau = np.zeros(model.nv)
    jac = np.zeros((3, model.nv))
    for b in feet:
        mujoco.mj_jacBody(model, data, jac, None, b)
        tau += np.abs(jac.T @ f)
    return tau[dof]
