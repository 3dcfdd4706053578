"""PD gains that hold a loaded robot: the natural-frequency rule.

Each joint is treated as a second-order system: the inertia it moves, `I`, on a spring
`kp` and damper `kd`. Given a target natural frequency `w = 2 pi f` and damping ratio
`zeta` (the card's `gains:`; default 10 Hz, critically damped):

    I    = M[i, i] at the default pose: the joint's armature (reflected rotor inertia) plus
           the inertia of everything it moves about its axis, the other joints held
    kp   = I w^2                       the spring that rings at f
    kp  >= tau_load / HOLD_ERROR       stiff enough that the static load sags it at most
                                       HOLD_ERROR (tau_load: the worst-case gravity torque
                                       of the subtree about the axis; for legged robots
                                       also the torque that carries the robot's weight,
                                       shared by the feet, in the default pose)
    kp  <= I' (STABLE_W_DT / dt)^2     no stiffer than the timestep integrates stably (I':
                                       the inertia felt with the other joints free,
                                       1 / (M^-1)[i, i], at most I)
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
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    dof = [int(model.jnt_dofadr[j]) for j in joint_ids]
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, full)
    inertia = np.maximum(full[dof, dof], MIN_INERTIA)
    # The inertia a joint feels when the others move too (1 / (M^-1)_ii) is smaller; the
    # timestep bound uses it, so coupled light links still integrate stably.
    felt = np.maximum(1.0 / np.diag(np.linalg.inv(full))[dof], MIN_INERTIA)
    load = _gravity_load(model, data, joint_ids) + _weight_load(model, data, dof, feet or [])
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
