"""Retargeting: end-effector targets -> joint targets with pinocchio, for any arm body and
the arms of humanoids, built from the body's MJCF (`pin.buildModelFromMJCF`).

End-effector trajectories are the body-agnostic interface between bodies: a trajectory
recorded on one body (positions in m, world frame, plus rotation matrices) is mapped into
another body's workspace (`map_workspace`) and solved there (`retarget_trajectory`), which
reports the end-effector error of every step.

IK (`ArmIK.solve`): damped least squares on the 6-D error (position in m, rotation vector
in rad weighted by `rot_weight`; 0 solves for position only), a null-space pull toward the
posture (the body's default pose), steps clipped to `max_step` and every iterate projected
into the joint limits; a joint pinned at a limit and pushed outward drops out of the step so
that the others make up for it. If the first start does not converge, `restarts` random starts
inside the limits are tried and the best result is returned.

Joint values are in rad (hinge) or m (slide), in `ArmIK.joint_names` order. Joints outside
the chain (legs, the other arm, a floating base) stay at the body's home keyframe.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import mujoco
import numpy as np
import pinocchio as pin

from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.tasks.math import dls_pinv

EE_FRAME = "xembody_ee"


@dataclass(kw_only=True)
class IKConfig:
    damping: float = 0.01  # DLS damping lambda (m or rad)
    max_iters: int = 150
    pos_tol: float = 1e-4  # m
    rot_tol: float = 1e-3  # rad
    rot_weight: float = 0.5  # weight of the rotation error (m per rad); 0: position only
    posture_gain: float = 0.05  # null-space pull toward the posture, per iteration
    max_step: float = 0.3  # rad, largest joint change per iteration
    restarts: int = 24  # random starts tried when the first does not converge
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("damping", "pos_tol", "rot_tol", "max_step"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ik.{name}={getattr(self, name)}, expected > 0")
        if self.rot_weight < 0 or self.posture_gain < 0 or self.restarts < 0:
            raise ValueError("ik.rot_weight, posture_gain and restarts must be >= 0")
        if self.max_iters < 1:
            raise ValueError(f"ik.max_iters={self.max_iters}, expected >= 1")


@dataclass
class IKResult:
    q: np.ndarray  # (n,) joint values of the chain
    pos_error: float  # m
    rot_error: float  # rad
    iterations: int
    converged: bool


@dataclass(frozen=True)
class EndEffector:
    """A point on the body: a MuJoCo site, or a body with an offset in its frame (m)."""

    name: str
    kind: str = "site"  # "site" | "body"
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


def end_effector(emb: Embodiment, arm: str = "") -> EndEffector:
    """The end effector of `emb`: the ee site of an arm body, the forearm tip of a
    humanoid's `arm` ("left" or "right")."""
    if emb.body_class == "humanoid":
        if arm not in ("left", "right"):
            raise ValueError(f"arm={arm!r}: a humanoid has a 'left' and a 'right' arm")
        length = float(emb.params["forearm_length"])
        return EndEffector(f"{arm}_forearm", "body", (0.0, 0.0, -length))
    if emb.sensors.ee_site is None:
        raise ValueError(f"body {emb.name!r} ({emb.body_class}) names no end-effector site")
    return EndEffector(emb.sensors.ee_site)


def mujoco_ee_pose(
    model: mujoco.MjModel, data: mujoco.MjData, ee: EndEffector
) -> tuple[np.ndarray, np.ndarray]:
    """(position (3,), rotation (3, 3)) of `ee` in MuJoCo's world frame (after kinematics)."""
    if ee.kind == "site":
        i = model.site(ee.name).id
        return data.site_xpos[i].copy(), data.site_xmat[i].reshape(3, 3).copy()
    i = model.body(ee.name).id
    rot = data.xmat[i].reshape(3, 3).copy()
    return data.xpos[i] + rot @ np.asarray(ee.offset), rot


class ArmIK:
    """Pinocchio IK for one kinematic chain of `emb` ending at `ee`."""

    def __init__(self, emb: Embodiment, ee: EndEffector | None = None, cfg: IKConfig | None = None):
        self.emb, self.cfg = emb, cfg or IKConfig()
        self.ee = ee or end_effector(emb)
        self.model = _load_pin(emb.mjcf)
        self.data = self.model.createData()
        mj = emb.compile()
        self._add_ee_frame(mj)
        self.q_home = self._home(mj)
        # chain joints: actuated 1-dof joints that support the end-effector frame
        parent = self.model.frames[self.frame].parentJoint
        names, qi, vi = [], [], []
        actuated = set(emb.joint_names)
        for j in self.model.supports[parent]:
            jm = self.model.joints[j]
            for k, name in enumerate(_sub_joint_names(self.model, j, mj)):
                if name in actuated and jm.nq == jm.nv:
                    names.append(name)
                    qi.append(jm.idx_q + k)
                    vi.append(jm.idx_v + k)
        if not names:
            raise ValueError(f"{emb.name}: no actuated joint moves end effector {ee!r}")
        self.joint_names = tuple(names)
        self._qi, self._vi = np.array(qi), np.array(vi)
        by_name = {j.name: j for j in emb.joints}
        self.lower = np.array([by_name[n].range[0] for n in names])
        self.upper = np.array([by_name[n].range[1] for n in names])
        self.posture = np.array([by_name[n].default for n in names])
        self.rng = np.random.default_rng(self.cfg.seed)

    @classmethod
    def for_body(cls, emb: Embodiment, arm: str = "", cfg: IKConfig | None = None) -> ArmIK:
        if emb.body_class == "humanoid" and cfg is None:
            cfg = IKConfig(rot_weight=0.0)  # 3-4 joint arms: position targets
        return cls(emb, end_effector(emb, arm), cfg)

    # --- kinematics ---------------------------------------------------------------------
    def full_q(self, q: np.ndarray) -> np.ndarray:
        full = self.q_home.copy()
        full[self._qi] = q
        return full

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector (position (3,) m, rotation (3, 3)) in the world for chain values q."""
        pin.framesForwardKinematics(self.model, self.data, self.full_q(np.asarray(q, float)))
        pose = self.data.oMf[self.frame]
        return pose.translation.copy(), pose.rotation.copy()

    def _chain_joints(self) -> list[int]:
        """Pinocchio joint ids that hold chain joints, root first."""
        parent = self.model.frames[self.frame].parentJoint
        out = []
        for j in self.model.supports[parent]:
            jm = self.model.joints[j]
            if any(jm.idx_q <= i < jm.idx_q + jm.nq for i in self._qi):
                out.append(j)
        return out

    def shoulder(self) -> np.ndarray:
        """World position (m) of the first chain joint at the posture."""
        pin.forwardKinematics(self.model, self.data, self.full_q(self.posture))
        return self.data.oMi[self._chain_joints()[0]].translation.copy()

    def reach(self) -> float:
        """Length (m) of the chain stretched out: joint-to-joint distances plus the tip."""
        pin.framesForwardKinematics(self.model, self.data, self.full_q(self.posture))
        pts = [self.data.oMi[j].translation.copy() for j in self._chain_joints()]
        pts.append(self.data.oMf[self.frame].translation.copy())
        return float(sum(np.linalg.norm(b - a) for a, b in zip(pts, pts[1:], strict=False)))

    # --- inverse kinematics -------------------------------------------------------------
    def solve(
        self, pos: np.ndarray, rot: np.ndarray | None = None, q0: np.ndarray | None = None
    ) -> IKResult:
        """Joint values reaching `pos` (3,) m and, if given, `rot` (3, 3), from `q0`."""
        pos = np.asarray(pos, float)
        if pos.shape != (3,) or not np.isfinite(pos).all():
            raise ValueError(f"IK target position {pos!r}: expected 3 finite numbers (m)")
        start = self.posture if q0 is None else np.clip(q0, self.lower, self.upper)
        best = self._solve_from(start, pos, rot)
        for _ in range(self.cfg.restarts):
            if best.converged:
                break
            trial = self._solve_from(self.rng.uniform(self.lower, self.upper), pos, rot)
            if _score(trial, self.cfg) < _score(best, self.cfg):
                best = trial
        return best

    def _solve_from(self, q: np.ndarray, pos: np.ndarray, rot: np.ndarray | None) -> IKResult:
        c, m, d = self.cfg, self.model, self.data
        w = c.rot_weight if rot is not None else 0.0
        rows = slice(0, 6) if w > 0 else slice(0, 3)
        q = q.copy()
        for it in range(1, c.max_iters + 1):
            full = self.full_q(q)
            pin.computeJointJacobians(m, d, full)
            pin.updateFramePlacements(m, d)
            pose = d.oMf[self.frame]
            err = np.zeros(6)
            err[:3] = pos - pose.translation
            if w > 0:
                err[3:] = pin.log3(rot @ pose.rotation.T)
            pe, re = float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))
            if pe < c.pos_tol and (w == 0 or re < c.rot_tol):
                return IKResult(q, pe, re, it, True)
            jac = pin.getFrameJacobian(m, d, self.frame, pin.LOCAL_WORLD_ALIGNED)[:, self._vi]
            jac[3:] *= w
            err[3:] *= w
            jac, err = jac[rows], err[rows]
            dq = self._dls_step(jac, err, q)
            # joints pinned at a limit and pushed outward leave the solve; the rest make up
            pinned = ((q <= self.lower) & (dq < 0)) | ((q >= self.upper) & (dq > 0))
            if pinned.any() and not pinned.all():
                jac[:, pinned] = 0.0
                dq = self._dls_step(jac, err, q)
                dq[pinned] = 0.0
            norm = np.abs(dq).max()
            if norm > c.max_step:
                dq *= c.max_step / norm
            q = np.clip(q + dq, self.lower, self.upper)
        p, r = self.fk(q)
        re = float(np.linalg.norm(pin.log3(rot @ r.T))) if rot is not None else 0.0
        pe = float(np.linalg.norm(pos - p))
        return IKResult(q, pe, re, c.max_iters, pe < 10 * c.pos_tol and re < 10 * c.rot_tol)

    def _dls_step(self, jac: np.ndarray, err: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Damped least squares toward `err`, plus the posture pull in the null space."""
        c = self.cfg
        pinv = dls_pinv(jac, c.damping)
        null = np.eye(len(q)) - pinv @ jac
        return pinv @ err + null @ (c.posture_gain * (self.posture - q))

    # --- construction helpers -----------------------------------------------------------
    def _add_ee_frame(self, mj: mujoco.MjModel) -> None:
        """A pinocchio frame at the end effector, placed from MuJoCo's own model."""
        ee, m = self.ee, self.model
        if ee.kind == "site":
            site = mj.site(ee.name)
            body, local_pos, local_quat = mj.body(site.bodyid[0]).name, site.pos, site.quat
        else:
            body, local_pos, local_quat = ee.name, np.asarray(ee.offset), np.array([1, 0, 0, 0])
        if not m.existBodyName(body):
            raise ValueError(f"{self.emb.name}: pinocchio model has no body {body!r}")
        parent_frame = m.getBodyId(body)
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, np.asarray(local_quat, float))
        placement = m.frames[parent_frame].placement * pin.SE3(rot.reshape(3, 3), local_pos)
        frame = pin.Frame(
            EE_FRAME, m.frames[parent_frame].parentJoint, parent_frame, placement,
            pin.FrameType.OP_FRAME,
        )  # fmt: skip
        self.frame = m.addFrame(frame)
        self.data = m.createData()

    def _home(self, mj: mujoco.MjModel) -> np.ndarray:
        """Pinocchio configuration of MuJoCo's home keyframe (or qpos0)."""
        qpos = mj.key_qpos[0] if mj.nkey else mj.qpos0
        return mj_to_pin_q(self.model, mj, qpos)


@dataclass
class Retargeted:
    """A trajectory solved on one body: joint values and the end-effector error per step."""

    joint_names: tuple[str, ...]
    q: np.ndarray  # (T, n) rad or m
    target_pos: np.ndarray  # (T, 3) m, the targets after workspace mapping
    pos_error: np.ndarray  # (T,) m, |target - FK(q)|
    rot_error: np.ndarray  # (T,) rad (zeros when no rotations were given)

    def summary(self) -> dict[str, float]:
        return {
            "steps": len(self.q),
            "pos_error_mean_m": float(self.pos_error.mean()),
            "pos_error_max_m": float(self.pos_error.max()),
            "rot_error_mean_rad": float(self.rot_error.mean()),
            "rot_error_max_rad": float(self.rot_error.max()),
        }


def map_workspace(pos: np.ndarray, src: ArmIK, dst: ArmIK) -> np.ndarray:
    """(T, 3) end-effector positions recorded on `src` -> `dst`'s workspace: displacements
    from `src`'s home end-effector position (its default pose), scaled by the ratio of the
    two reaches, added to `dst`'s home end-effector position."""
    pos = np.asarray(pos, float)
    return dst.fk(dst.posture)[0] + (pos - src.fk(src.posture)[0]) * (dst.reach() / src.reach())


def retarget_trajectory(
    ik: ArmIK, pos: np.ndarray, rot: np.ndarray | None = None, q0: np.ndarray | None = None
) -> Retargeted:
    """Solve `ik` along (T, 3) positions and optional (T, 3, 3) rotations, each step warm-
    started from the previous solution (smooth joint paths, no branch flips)."""
    pos = np.asarray(pos, float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"trajectory positions have shape {pos.shape}, expected (T, 3)")
    if rot is not None and np.shape(rot) != (len(pos), 3, 3):
        raise ValueError(f"trajectory rotations have shape {np.shape(rot)}, expected (T, 3, 3)")
    q = ik.posture if q0 is None else np.asarray(q0, float)
    qs, pe, re = [], [], []
    for t in range(len(pos)):
        r = ik.solve(pos[t], None if rot is None else rot[t], q0=q)
        q = r.q
        qs.append(q)
        pe.append(r.pos_error)
        re.append(r.rot_error)
    return Retargeted(ik.joint_names, np.array(qs), pos, np.array(pe), np.array(re))


def mj_to_pin_q(model: pin.Model, mj: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Map a MuJoCo qpos to a pinocchio q (by joint name; free-joint quaternions reordered
    from w-x-y-z to x-y-z-w)."""
    q = pin.neutral(model)
    for j in range(1, model.njoints):
        jm, names = model.joints[j], _sub_joint_names(model, j, mj)
        adr = mj.joint(names[0]).qposadr[0]
        block = np.array(qpos[adr : adr + jm.nq], float)
        if jm.nq == 7 and mj.joint(names[0]).type[0] == mujoco.mjtJoint.mjJNT_FREE:
            block[3:] = block[[4, 5, 6, 3]]
        q[jm.idx_q : jm.idx_q + jm.nq] = block
    return q


def _sub_joint_names(model: pin.Model, j: int, mj: mujoco.MjModel) -> list[str]:
    """MJCF joint names inside pinocchio joint j: one, or for a composite joint (several
    joints in one MJCF body, named "Composite_<first>") every joint of that body, in order."""
    name = model.names[j]
    if not name.startswith("Composite_"):
        return [name]
    body = mj.joint(name.removeprefix("Composite_")).bodyid[0]
    start, count = mj.body_jntadr[body], mj.body_jntnum[body]
    return [mj.joint(i).name for i in range(start, start + count)]


def _score(r: IKResult, cfg: IKConfig) -> float:
    return r.pos_error + cfg.rot_weight * r.rot_error


def _load_pin(mjcf: str) -> pin.Model:
    fd, path = tempfile.mkstemp(suffix=".xml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(mjcf)
        return pin.buildModelFromMJCF(path)
    finally:
        os.unlink(path)
