"""`xembody play`: run a policy in one env and write what it does as pictures: an animated
GIF (`--out play.gif`) or a frame strip (`--out play.png`)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import torch

from xembody.config import add_arguments, field, from_args


@dataclass(kw_only=True)
class PlayConfig:
    checkpoint: str = field("", "checkpoint file or run folder (latest checkpoint)")
    seconds: float = field(4.0, "simulated time to show")
    fps: float = field(10.0, "frames per second of the output")
    out: str = field("play.gif", "output: .gif (animation) or .png (frame strip)")
    width: int = field(320, "frame width")
    height: int = field(240, "frame height")
    seed: int = field(2, "seed of the episode")
    policy: str = field("trained", "trained | zero")

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("give --checkpoint (a model_<it>.pt file or a run folder)")
        if Path(self.out).suffix not in (".gif", ".png"):
            raise ValueError(f"out={self.out!r}: expected a .gif or .png file")
        if self.seconds <= 0 or self.fps <= 0:
            raise ValueError("seconds and fps must be > 0")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="run a policy and write a GIF or frame strip")
    add_arguments(p, PlayConfig)
    p.set_defaults(run=lambda args: play(from_args(PlayConfig, args)))


def play(cfg: PlayConfig) -> int:
    from PIL import Image

    from xembody.evaluate import load_policy
    from xembody.models.run import Run, make_env
    from xembody.sim.render import render_grid, render_model

    run = Run.load(cfg.checkpoint)
    env = make_env(run, 1, seed=cfg.seed, randomize=False)
    if cfg.policy == "trained":
        policy = load_policy(cfg.checkpoint, env)
    else:
        policy = lambda obs: torch.zeros(1, env.num_actions)  # noqa: E731
    model, sim = env.sim.model, env.sim
    data = mujoco.MjData(model)
    every = max(1, round(env.cfg.control_hz / cfg.fps))
    frames, labels = [], []
    obs = env.get_observations()
    steps = round(cfg.seconds * env.cfg.control_hz)
    with torch.inference_mode():
        for k in range(steps):
            if k % every == 0:
                data.qpos[:] = sim.qpos[0].numpy()
                data.mocap_pos[:] = sim.mocap_pos[0].numpy()
                mujoco.mj_forward(model, data)
                frames.append(render_model(model, data, width=cfg.width, height=cfg.height))
                labels.append(f"t={k / env.cfg.control_hz:.1f}s")
            obs, _, _, _ = env.step(policy(obs))
    env.close()
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(
            out, save_all=True, append_images=images[1:], duration=1000 / cfg.fps, loop=0
        )
    else:
        pick = np.linspace(0, len(frames) - 1, min(8, len(frames))).round().astype(int)
        grid = render_grid([frames[i] for i in pick], [labels[i] for i in pick], cols=4)
        Image.fromarray(grid).save(out)
    print(f"{run.task} on {run.body.name}: {len(frames)} frames -> {out}")
    return 0
