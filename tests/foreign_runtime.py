"""A runtime written from the exported contract alone: onnxruntime, numpy, json and mujoco,
no xembody. It is what a team with its own robot stack would write after reading
policy.json (format "xembody-policy/2") and docs/ROS.md ("Contract"): the observation is
rebuilt from raw readings with the sidecar's term list, formulas and conventions and the
bundled body model, then policy.onnx runs.

    python tests/foreign_runtime.py EXPORT_FOLDER STEPS_JSON  ->  JSON on stdout

STEPS_JSON holds a list of raw readings, one per control step, each a dict with
"joint_names", "position", "velocity" (any order, extra joints allowed) and, as the policy
needs them, "imu_quat" (w,x,y,z), "imu_gyro", "odom_pos", "odom_quat" (w,x,y,z),
"odom_lin_vel", "odom_ang_vel" (base frame), "twist", "goal", "target_pos", "target_quat"
(w,x,y,z) and "ranges". The output holds each step's observation and action, and which
xembody modules were imported (none, if this file is honest).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mujoco
import numpy as np
import onnxruntime as ort

SUPPORTED = ("xembody-policy/2",)


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v rotated by the unit quaternion q (w, x, y, z): R(q) v."""
    w, u = q[0], np.asarray(q[1:])
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def conjugate(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def heading(q: np.ndarray) -> float:
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def to_yaw_frame(yaw: float, v: np.ndarray) -> np.ndarray:
    """R(-yaw) applied to the xy part of v."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1]])


class ForeignRuntime:
    def __init__(self, folder: str | Path):
        folder = Path(folder)
        self.contract = c = json.loads((folder / "policy.json").read_text())
        if c["format"] not in SUPPORTED:
            raise ValueError(f"policy format {c['format']}, this runtime reads {SUPPORTED}")
        self.cfg = c["task_cfg"]
        self.conv = c["conventions"]
        self.joint_names = c["joint_names"]
        self.default = np.asarray(c["default_pose"])
        self.terms = c["observation"]["terms"]
        self.session = ort.InferenceSession(
            str(folder / c["files"]["onnx"]), providers=["CPUExecutionProvider"]
        )
        self.model = mujoco.MjModel.from_xml_path(str(folder / c["body"]["model"]))
        self.data = mujoco.MjData(self.model)
        self.last_action = np.zeros(c["num_actions"])
        self.step_count = 0

    # --- readings by name -----------------------------------------------------------------
    def joints(self, r: dict, key: str, names: list[str]) -> np.ndarray:
        index = {n: i for i, n in enumerate(r["joint_names"])}
        return np.array([r[key][index[n]] for n in names], dtype=float)

    def gait_phase(self) -> float:
        clock = self.conv["gait_clock"]
        return (self.step_count * clock["phase_per_step"]) % 1.0

    # --- forward kinematics in the bundled model -------------------------------------------
    def kinematics(self, r: dict) -> tuple[np.ndarray, np.ndarray]:
        m, d = self.model, self.data
        for name, q in zip(r["joint_names"], r["position"], strict=True):
            j = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)
            if j >= 0:
                d.qpos[m.jnt_qposadr[j]] = q
        for e in range(m.neq):  # followers of joint equalities (mirrored fingers)
            if m.eq_type[e] == mujoco.mjtEq.mjEQ_JOINT and m.eq_obj2id[e] >= 0:
                a, b = m.jnt_qposadr[m.eq_obj1id[e]], m.jnt_qposadr[m.eq_obj2id[e]]
                x = d.qpos[b] - m.qpos0[b]
                d.qpos[a] = m.qpos0[a] + m.eq_data[e, :5] @ x ** np.arange(5)
        mujoco.mj_kinematics(m, d)
        site = m.site(self.conv["end_effector"]["site"]).id
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[site])
        return d.site_xpos[site].copy(), quat

    def policy_joint_ids(self) -> list[int]:
        return [self.model.joint(n).id for n in self.joint_names]

    def columns(self, ee: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = self.policy_joint_ids()
        axis = self.data.xaxis[ids]
        return np.cross(axis, ee - self.data.xanchor[ids]), axis

    # --- the observation -------------------------------------------------------------------
    def observe(self, r: dict) -> np.ndarray:
        task = self.contract["task"]
        values: dict[str, np.ndarray] = {
            "joint_pos": self.joints(r, "position", self.joint_names) - self.default,
            "joint_vel": self.joints(r, "velocity", self.joint_names),
            "last_action": self.last_action,
        }
        if task == "reach":
            ee, ee_quat = self.kinematics(r)
            target = np.asarray(r["target_pos"], dtype=float)
            dq = np.empty(4)
            mujoco.mju_mulQuat(dq, np.asarray(r["target_quat"], dtype=float), conjugate(ee_quat))
            dq = -dq if dq[0] < 0 else dq
            s = max(float(np.linalg.norm(dq[1:])), 1e-9)
            rot_error = dq[1:] / s * 2.0 * np.arctan2(s, dq[0])
            pos_error = target - ee
            column, axis = self.columns(ee)
            values |= {"ee_pos": ee, "target_pos": target, "pos_error": pos_error,
                       "rot_error": rot_error, "jac_pos_error": 10.0 * column @ pos_error,
                       "jac_rot_error": axis @ rot_error}  # fmt: skip
            if "ik_damping" in self.cfg:
                w, lam = self.cfg["ik_rot_weight"], self.cfg["ik_damping"]
                jac = np.concatenate([column, w * axis], 1).T
                e = np.concatenate([pos_error, w * rot_error])
                step = jac.T @ np.linalg.solve(jac @ jac.T + lam**2 * np.eye(6), e)
                values["ik_step"] = np.clip(step, -1.0, 1.0)
            values["gravity_sag"] = self.gravity_sag()
        elif task == "velocity":
            g = rotate(conjugate(np.asarray(r["imu_quat"], dtype=float)), np.array([0, 0, -1.0]))
            a = 2 * np.pi * self.gait_phase() if self.conv["gait_clock"] else 0.0
            values |= {"base_ang_vel": np.asarray(r["imu_gyro"], dtype=float),
                       "base_lin_vel": np.asarray(r["odom_lin_vel"], dtype=float),
                       "projected_gravity": g, "velocity_command": np.asarray(r["twist"]),
                       "gait_clock": np.array([np.sin(a), np.cos(a)])}  # fmt: skip
        elif task == "navigate":
            quat = np.asarray(r["odom_quat"], dtype=float)
            yaw = heading(quat)
            goal = to_yaw_frame(yaw, np.asarray(r["goal"]) - np.asarray(r["odom_pos"])[:2])
            v_world = rotate(quat, np.asarray(r["odom_lin_vel"], dtype=float))
            ranges = np.asarray(r["ranges"], dtype=float)
            top = float(self.cfg["ray_range"])
            values |= {
                "goal_distance": np.array([np.linalg.norm(goal)]),
                "goal_direction": goal / max(float(np.linalg.norm(goal)), 1e-6),
                "base_lin_vel": to_yaw_frame(yaw, v_world),
                "base_ang_vel": np.asarray(r["odom_ang_vel"], dtype=float)[2:3],
                "ranges": np.where((ranges < 0) | np.isinf(ranges), top, np.minimum(ranges, top)),
            }
        parts = []
        for term in self.terms:
            x = np.atleast_1d(values[term["name"]])
            assert x.shape == (term["size"],), (term["name"], x.shape)
            parts.append(x)
        return np.concatenate(parts).astype(np.float32)

    def gravity_sag(self) -> np.ndarray:
        m, d = self.model, self.data  # kinematics already at the readings
        d.qvel[:] = 0.0
        mujoco.mj_comPos(m, d)
        bias = np.zeros(m.nv)
        mujoco.mj_rne(m, d, 0, bias)
        ids = self.policy_joint_ids()
        driven = list(m.actuator_trnid[:, 0])
        kp = np.array([m.actuator_gainprm[driven.index(j), 0] for j in ids])
        return bias[m.jnt_dofadr[ids]] / kp

    def step(self, r: dict) -> tuple[np.ndarray, np.ndarray]:
        obs = self.observe(r)
        action = self.session.run(None, {"obs": obs[None]})[0][0]
        clip = float(self.contract["action"]["action_clip"])
        self.last_action = np.clip(action.astype(float), -clip, clip)
        self.step_count += 1
        return obs, action


def main(folder: str, steps_file: str) -> None:
    runtime = ForeignRuntime(folder)
    out = {"obs": [], "actions": []}
    for readings in json.loads(Path(steps_file).read_text()):
        obs, action = runtime.step(readings)
        out["obs"].append(obs.tolist())
        out["actions"].append(action.tolist())
    out["xembody_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "xembody")
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
