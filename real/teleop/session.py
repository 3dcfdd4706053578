"""A teleoperation session: a device drives an arm body through IK, in sim or on a ROS
robot, and every control step is recorded into an xembody dataset (through `Recorder`, so
the loop never waits for the disk).

One loop; what it drives is its robot side (`xembody.real.teleop.side`): `SimSide` (the
task's env in MuJoCo, the default) or `xembody.real.ros.teleop_robot.RosSide` (a robot
behind ROS 2 topics, the safety node in between). Each step: the device's `TeleopCommand`
moves the end-effector target (an absolute `ee_pose`, or the `ee_twist` integrated over
the control period, kept within `max_lead` m of the actual end effector), pinocchio IK
turns the target into joint targets (warm-started from the last solution, or from the
measured joints) offset by the gravity sag of the position servos (gravity torque / kp, at
the target, from the body's MuJoCo model), which become the task's action, and the robot
side executes it for one control period. The episode ends when the task's episode ends
(time-out), or on the device's "save"/"discard" events.

Recorded per frame (the dataset's features; see docs/DATASET.md):
    obs (obs_dim,)            the task's policy observation before the step
    action (num_actions,)     the task action sent (policy units: target = default + scale * a)
    joint_pos, joint_vel      (n,) every joint of the body, measured, rad / rad/s (m for slides)
    ee_pos (3,), ee_quat (4,) end-effector pose by forward kinematics of the measured joints,
                              m / w-x-y-z, world (the arm's base) frame
    ee_target_pos, ee_target_quat   the commanded end-effector target (body-agnostic)
    cmd_twist (6,), cmd_gripper (1,)    the device's command
    rgb_<camera> (H, W, 3)    optional camera images (sim)
Per episode: success (the task's), task target pose, device, seed, steps.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch

from xembody.models.dataset import Dataset, Feature
from xembody.models.dataset_meta import dataset_body, write_meta
from xembody.models.recorder import Recorder
from xembody.real.retarget import ArmIK, IKConfig
from xembody.sim.bodies.embodiment import Embodiment

from .command import Device, SessionState, TeleopCommand
from .side import Reading, SimSide


@dataclass(kw_only=True)
class SessionConfig:
    task: str = "reach"
    episodes: int = 0  # stop after this many saved episodes (0: when the device quits)
    max_steps: int = 0  # stop after this many control steps in all (0: no limit)
    episode_seconds: float = 0.0  # episode length (0: the task's)
    realtime: bool = True  # pace the loop at the control rate (a human is in the loop)
    randomize: bool = False  # the task's domain randomisation (off: replays are exact)
    cameras: tuple[str, ...] = ()  # model cameras to record
    width: int = 160
    height: int = 120
    max_lead: float = 0.1  # m, largest distance of the twist-driven target from the hand
    ik_iterations: int = 30  # DLS iterations per control step (few: joint targets walk)
    ik_max_step: float = 0.3  # rad, largest joint change per IK iteration
    ik_from_measured: bool = False  # start IK from the measured joints (else the last target)
    action_noise: float = 0.0  # std (action units) added to the executed action, not the
    # recorded one: demonstrations that show recoveries from perturbed states (DART)
    seed: int = 0
    save_failures: bool = True  # keep time-out episodes that did not succeed

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.max_steps < 0 or self.episode_seconds < 0:
            raise ValueError("episodes, max_steps and episode_seconds must be >= 0")
        if self.action_noise < 0:
            raise ValueError(f"action_noise={self.action_noise}, expected >= 0")
        if self.max_lead <= 0:
            raise ValueError(f"max_lead={self.max_lead}, expected > 0 (m)")
        if self.ik_iterations < 1 or self.ik_max_step <= 0:
            raise ValueError(
                f"ik_iterations={self.ik_iterations}, ik_max_step={self.ik_max_step}: "
                "expected >= 1 and > 0"
            )


def embodiment_from_meta(meta: dict[str, Any]) -> Embodiment:
    """The body a dataset was recorded with (`xembody.models.dataset_meta.dataset_body`)."""
    return dataset_body(meta)


class TeleopSession:
    """Run `device` on body `emb` (an arm) and record to `out`; in sim unless `side` (a robot
    side, `xembody.real.teleop.side`) is given."""

    def __init__(
        self, emb: Embodiment, device: Device, out: str | Path, cfg: SessionConfig,
        executor=None, side=None,
    ):  # fmt: skip
        """`executor(obs TensorDict, policy (1, obs_dim)) -> (1, num_actions)`, when given,
        chooses the actions executed (a learner's, for DAgger); the device's are recorded."""
        self.executor = executor
        self.emb, self.device, self.cfg = emb, device, cfg
        self.side = side if side is not None else SimSide(emb, cfg)
        if cfg.cameras and not hasattr(self.side, "render"):
            raise ValueError(
                f"cameras {list(cfg.cameras)}: this robot side renders none (on a ROS robot "
                "the recorder node records camera topics)"
            )
        self.env, self.task_cfg = self.side.env, self.side.task_cfg
        task = self.env.task
        ik_cfg = IKConfig(restarts=0, max_iters=cfg.ik_iterations, max_step=cfg.ik_max_step)
        self.ik = ArmIK.for_body(emb, cfg=ik_cfg)
        missing = set(task.joint_names) - set(self.ik.joint_names)
        if missing:
            raise ValueError(f"task joints {sorted(missing)} are not on the IK chain of {emb.name}")
        self._ik_index = [self.ik.joint_names.index(n) for n in task.joint_names]
        m = self.env.sim.model
        self._chain_qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in self.ik.joint_names])
        self._gravity = mujoco.MjData(m)
        self._chain_dadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in self.ik.joint_names])
        act = [emb.joint_names.index(n) for n in self.ik.joint_names]  # actuator i: joints[i]
        self._chain_kp = m.actuator_gainprm[act, 0].copy()
        self._rng = np.random.default_rng(cfg.seed + 1)
        features = self.features()
        path = Path(out)
        from xembody.models.export import obs_layout

        meta = write_meta(
            emb,
            obs_layout=obs_layout(self.env),
            task=cfg.task,
            task_cfg=json.loads(json.dumps(dataclasses.asdict(self.task_cfg), default=str)),
            device=device.name,
            control_hz=self.task_cfg.control_hz,
            action_joint_names=list(task.joint_names),
            **self.side.meta(),
        )
        if path.exists():
            self.dataset = Dataset.open(path, mode="a")
            if set(self.dataset.features) != set(features):
                raise ValueError(
                    f"{path}: recorded with features {sorted(self.dataset.features)}, this "
                    f"session records {sorted(features)}; choose another --out"
                )
        else:
            self.dataset = Dataset.create(path, features, fps=self.task_cfg.control_hz, meta=meta)
        self.recorder = Recorder(self.dataset)
        self.saved = self.discarded = self.steps = 0

    def features(self) -> dict[str, Feature]:
        n, f = len(self.emb.joint_names), {}
        obs_dim = int(self.env.get_observations()["policy"].shape[1])
        f["obs"] = Feature((obs_dim,))
        f["action"] = Feature((self.env.num_actions,))
        f["joint_pos"], f["joint_vel"] = Feature((n,)), Feature((n,))
        for k, size in (("ee_pos", 3), ("ee_quat", 4), ("ee_target_pos", 3), ("ee_target_quat", 4)):
            f[k] = Feature((size,))
        f["cmd_twist"], f["cmd_gripper"] = Feature((6,)), Feature((1,))
        for cam in self.cfg.cameras:
            f[f"rgb_{cam}"] = Feature((self.cfg.height, self.cfg.width, 3), "uint8", image=True)
        return f

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg, side = self.cfg, self.side
        dt = 1.0 / self.task_cfg.control_hz
        try:
            side.begin()
            self._new_episode()
            t_next = time.monotonic()
            while True:
                r = side.read()
                ee_pos, ee_rot = self.ik.fk(r.qpos[self._chain_qadr])
                target_pos, target_quat = side.target()
                state = SessionState(
                    t=self.t, ee_pos=ee_pos, ee_quat=_quat(ee_rot),
                    target_pos=target_pos, target_quat=target_quat,
                )  # fmt: skip
                cmd = self.device.get_command(state)
                side.publish(cmd)
                self._move_target(cmd, ee_pos, ee_rot, dt)
                action = self._action(r)
                frame = self._frame(r, action, ee_pos, ee_rot, cmd)
                executed = action
                if self.executor is not None:
                    with torch.no_grad():
                        executed = self.executor(side.observations())[0].numpy()
                        executed = executed.astype(np.float32)
                if cfg.action_noise:
                    executed = action + self._rng.normal(0, cfg.action_noise, action.shape)
                finished = side.step(executed)
                self.recorder.add_frame(frame)
                self.steps += 1
                self.t += dt
                if "quit" in cmd.events:
                    self.recorder.discard_episode()
                    break
                if finished is not None or cmd.events & {"save", "discard"}:
                    if finished is not None:  # time-out
                        keep = finished["success"] or cfg.save_failures
                        reason = "time_out"
                    else:
                        keep, reason = "save" in cmd.events, "operator"
                    self._end(keep=keep, success=side.end(keep), reason=reason)
                    if cfg.episodes and self.saved >= cfg.episodes:
                        break
                    side.begin()
                    self._new_episode()
                if cfg.max_steps and self.steps >= cfg.max_steps:
                    self.recorder.discard_episode()
                    break
                if cfg.realtime and not side.paced:
                    t_next += dt
                    time.sleep(max(0.0, t_next - time.monotonic()))
        finally:
            self.recorder.close()
            side.close()
        return {
            "saved": self.saved, "discarded": self.discarded, "steps": self.steps,
            "path": str(self.dataset.path), **self.recorder.stats(),
        }  # fmt: skip

    # --- pieces -------------------------------------------------------------------------
    def _new_episode(self) -> None:
        """Targets and metadata of the episode the robot side has just begun."""
        self.t = 0.0
        q = self.side.read().qpos[self._chain_qadr]
        self.q_des = q
        self.target_pos, self.target_rot = self.ik.fk(q)
        target_pos, target_quat = self.side.target()
        self.episode_meta = {
            "target_pos": target_pos.tolist(),
            "target_quat": target_quat.tolist(),
            "device": self.device.name,
            "seed": self.cfg.seed,
        }

    def _end(self, *, keep: bool, success: bool, reason: str) -> None:
        """Commit or drop the episode just ended."""
        if keep:
            self.recorder.end_episode(success=success, end_reason=reason, **self.episode_meta)
            self.saved += 1
        else:
            self.recorder.discard_episode()
            self.discarded += 1

    def _move_target(self, cmd: TeleopCommand, ee_pos: np.ndarray, ee_rot: np.ndarray, dt: float):
        if "reset" in cmd.events:
            self.target_pos, self.target_rot = self.ik.fk(self.ik.posture)
        if cmd.ee_pose is not None:
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, cmd.ee_pose[1])
            self.target_pos, self.target_rot = cmd.ee_pose[0].copy(), rot.reshape(3, 3)
            return
        v, w = cmd.ee_twist[:3], cmd.ee_twist[3:]
        pos = self.target_pos + v * dt
        lead = pos - ee_pos
        if np.linalg.norm(lead) > self.cfg.max_lead:  # do not wind up beyond the hand
            pos = ee_pos + lead * (self.cfg.max_lead / np.linalg.norm(lead))
        self.target_pos = pos
        if np.any(w):
            quat = np.zeros(4)
            mujoco.mju_axisAngle2Quat(quat, w / np.linalg.norm(w), np.linalg.norm(w) * dt)
            delta = np.zeros(9)
            mujoco.mju_quat2Mat(delta, quat)
            self.target_rot = delta.reshape(3, 3) @ self.target_rot

    def _action(self, r: Reading) -> np.ndarray:
        start = r.qpos[self._chain_qadr] if self.cfg.ik_from_measured else self.q_des
        res = self.ik.solve(self.target_pos, self.target_rot, q0=start)
        self.q_des = res.q
        task = self.env.task
        q = (res.q + self._sag(res.q, r.qpos))[self._ik_index]
        return ((q - task.default_pose.numpy()) / self.task_cfg.action_scale).astype(np.float32)

    def _sag(self, q: np.ndarray, qpos: np.ndarray) -> np.ndarray:
        """Joint offsets (rad) that make position servos hold `q` against gravity: the
        gravity torque at q (MuJoCo's bias force at rest) over each servo's kp."""
        m, d = self.env.sim.model, self._gravity
        d.qpos[:] = qpos
        d.qpos[self._chain_qadr] = q
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)
        return d.qfrc_bias[self._chain_dadr] / self._chain_kp

    def _frame(self, r: Reading, action, ee_pos, ee_rot, cmd: TeleopCommand) -> dict[str, Any]:
        frame = {
            "obs": r.obs,
            "action": action,
            "joint_pos": r.joint_pos,
            "joint_vel": r.joint_vel,
            "ee_pos": ee_pos,
            "ee_quat": _quat(ee_rot),
            "ee_target_pos": self.target_pos,
            "ee_target_quat": _quat(self.target_rot),
            "cmd_twist": cmd.ee_twist,
            "cmd_gripper": np.array([1.0 if cmd.gripper is None else cmd.gripper]),
        }
        for cam in self.cfg.cameras:
            frame[f"rgb_{cam}"] = self.side.render(cam, self.cfg.width, self.cfg.height)
        return frame


def _quat(rot: np.ndarray) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.asarray(rot, float).reshape(9))
    return quat
