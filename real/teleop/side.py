"""The robot side of a teleoperation session: what its one loop reads and commands.

`SimSide` steps the task's env in MuJoCo. `xembody.real.ros.teleop_robot.RosSide` drives a
robot over ROS 2 (`RosRobot`: joint states in, joint targets out through the safety node),
with the same task for its episode targets, observation and action mapping. Both give:

    side.env            the task's BodyEnv (one env): task (target, joint names, default
                        pose), task_cfg, model (`env.sim.model`) and observation layout
    side.paced          True when `step` waits for the robot's time (the session then
                        does not sleep to pace itself)
    side.begin()        begin an episode: the first, and each after `end` (a robot moves
                        home then, not while the session is being built)
    side.read()         -> Reading: the measured state now (see `Reading`)
    side.observations() the policy observation as the env's TensorDict (for an executor)
    side.target()       -> (pos (3,) m, quat (4,) w-x-y-z): the episode's task target, world
    side.publish(cmd)   the device's command of this step (ROS: on the teleop topics)
    side.step(action)   execute one control period of the task action (num_actions,),
                        policy units (target = default + action_scale * clip(a)); returns
                        {"success": bool} when the episode has timed out (`end` follows),
                        else None
    side.end(keep)      -> bool: end the episode (time-out, or the operator's save or
                        discard: `keep`); the task's success of it
    side.meta()         extra dataset meta (where the frames came from)
    side.close()

Only `SimSide` renders cameras (`render`); on a robot the recorder node records camera
topics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
import torch

from xembody.sim.bodies.embodiment import Embodiment


@dataclass
class Reading:
    """One measured state, float64. qpos (nq,) of the task's model with the measured joints
    written in (the rest at their defaults); joint_pos, joint_vel (n,) every joint of the
    body in its joint order, rad / rad/s (m for slides); obs (obs_dim,) the task's policy
    observation of this state."""

    qpos: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    obs: np.ndarray


def task_config(cfg: Any) -> Any:
    """The task config a session runs (`cfg`: its SessionConfig): the task's defaults,
    its episode length when given, without randomisation unless asked for."""
    from xembody.sim import tasks

    overrides = {"episode_seconds": cfg.episode_seconds} if cfg.episode_seconds else {}
    task_cfg = tasks.make_config(cfg.task, **overrides)
    return task_cfg if cfg.randomize else tasks.nominal(task_cfg)


def check_joint_names(body: Sequence[str], heard: Iterable[str], topic: str) -> list[str]:
    """The joints heard on `topic` that the body lacks (a robot may publish more, e.g. a
    gripper the body leaves out); ValueError naming the missing and the extra joints when
    any joint of the body was not heard."""
    heard = set(heard)
    missing = [n for n in body if n not in heard]
    extra = sorted(heard - set(body))
    if missing:
        raise ValueError(
            f"the body's joints {missing} are not on {topic} (it publishes {sorted(heard)}; "
            f"extra there: {extra}): choose the robot's body with --body, or map its joints"
        )
    return extra


class SimSide:
    """The task's env in MuJoCo, one env (see the module docstring)."""

    paced = False

    def __init__(self, emb: Embodiment, cfg: Any):
        from xembody.sim import tasks

        self.emb = emb
        self.task_cfg = task_config(cfg)
        self.env = tasks.make_env(cfg.task, emb, 1, cfg=self.task_cfg, seed=cfg.seed, num_threads=1)
        m = self.env.sim.model
        self._qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in emb.joint_names])
        self._dadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in emb.joint_names])
        self._obs = self.env.get_observations()
        self._timed_out: bool | None = None  # the success of an episode the env has reset
        self._data = mujoco.MjData(m)
        self._renderer = None

    def begin(self) -> None:
        """The env has begun the episode already (when made, at its time-out, in `end`)."""

    def read(self) -> Reading:
        sim = self.env.sim
        qpos = sim.qpos[0].numpy().astype(float)
        dq = sim.qvel[0, self._dadr].numpy().astype(float)
        return Reading(qpos, qpos[self._qadr], dq, self._obs["policy"][0].numpy())

    def observations(self):
        return self._obs

    def target(self) -> tuple[np.ndarray, np.ndarray]:
        task = self.env.task
        return task.target_pos[0].numpy().astype(float), task.target_quat[0].numpy().astype(float)

    def publish(self, cmd: Any) -> None:
        """Nothing outside listens in sim."""

    def step(self, action: np.ndarray) -> dict[str, bool] | None:
        self._obs, _, _, extras = self.env.step(torch.from_numpy(action).float()[None])
        finished = extras.get("finished")
        if finished is None:
            return None
        self._timed_out = bool(finished["success"][0])  # the env has reset already
        return {"success": self._timed_out}

    def end(self, keep: bool) -> bool:
        if self._timed_out is not None:
            ok, self._timed_out = self._timed_out, None
            return ok
        ok = bool(self.env.episode_success[0])
        self._obs = self.env.reset()
        return ok

    def meta(self) -> dict[str, Any]:
        return {}

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        from xembody.sim.render import gl_backend, render_model

        m, d, sim = self.env.sim.model, self._data, self.env.sim
        d.qpos[:] = sim.qpos[0].numpy()
        if m.nmocap:
            d.mocap_pos[:] = sim.mocap_pos[0].numpy()
        mujoco.mj_forward(m, d)
        if gl_backend() == "raycast":
            return render_model(m, d, width=width, height=height, camera=camera)
        if self._renderer is None:
            self._renderer = mujoco.Renderer(m, height, width)
        self._renderer.update_scene(d, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        self.env.close()
