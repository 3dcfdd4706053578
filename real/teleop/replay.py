"""Replay a recorded episode in sim: the recorded actions drive the task's env again, from
the episode's start state and task target, and the joint trajectory is compared with the
recorded one (exact when the episode was recorded without domain randomisation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from xembody.models.dataset import Dataset
from xembody.models.dataset_meta import dataset_body


@dataclass
class Replayed:
    joint_names: tuple[str, ...]
    recorded: np.ndarray  # (T, n) recorded joint_pos
    replayed: np.ndarray  # (T, n) joint positions of the replay, same instants
    frames: list[np.ndarray]  # rendered pictures (when asked for)
    frame_steps: list[int]

    @property
    def max_error(self) -> float:
        return float(np.abs(self.recorded - self.replayed).max())


def replay_episode(
    ds: Dataset,
    index: int,
    *,
    render: Callable[[mujoco.MjModel, mujoco.MjData], np.ndarray] | None = None,
    every: int = 1,
) -> Replayed:
    """Drive the sim with episode `index`'s actions; `render(model, data)` is called every
    `every` steps to take a picture."""
    from xembody.sim import tasks

    meta = ds.meta
    for key in ("task", "task_cfg", "body"):
        if key not in meta:
            raise ValueError(f"{ds.path}: dataset meta has no {key!r}; it cannot be replayed")
    emb = dataset_body(meta)
    cfg = tasks.config_from_dict(meta["task"], meta["task_cfg"])
    env = tasks.make_env(meta["task"], emb, 1, cfg=cfg, randomize=False, num_threads=1)
    ep, info = ds.episode(index), ds.episodes[index]
    task, sim = env.task, env.sim
    if "target_pos" in info:  # put the task's target where it was
        task.target_pos[0] = torch.tensor(info["target_pos"])
        task.target_quat[0] = torch.tensor(info["target_quat"])
        sim.reset(torch.tensor([0]), mocap_pos=task.target_pos[:1, None, :])
    m = sim.model
    qadr = [m.jnt_qposadr[m.joint(n).id] for n in emb.joint_names]
    data = mujoco.MjData(m)
    replayed, frames, steps = [], [], []
    actions = ep["action"]
    try:
        for t in range(len(actions)):
            replayed.append(sim.qpos[0, qadr].numpy().copy())
            if render is not None and t % every == 0:
                data.qpos[:] = sim.qpos[0].numpy()
                if m.nmocap:
                    data.mocap_pos[:] = sim.mocap_pos[0].numpy()
                mujoco.mj_forward(m, data)
                frames.append(render(m, data))
                steps.append(t)
            env.step(torch.from_numpy(np.asarray(actions[t], np.float32))[None])
    finally:
        env.close()
    return Replayed(emb.joint_names, ep["joint_pos"], np.array(replayed), frames, steps)
