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
    command: tuple[float, ...] = field((), "velocity task: VX VY WZ held all episode")
    gait_plot: str = field(
        "", "velocity task: write a foot-contact diagram (.png) and print the foot pairing"
    )

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("give --checkpoint (a model_<it>.pt file or a run folder)")
        if Path(self.out).suffix not in (".gif", ".png"):
            raise ValueError(f"out={self.out!r}: expected a .gif or .png file")
        if self.seconds <= 0 or self.fps <= 0:
            raise ValueError("seconds and fps must be > 0")
        if self.command and len(self.command) != 3:
            raise ValueError(f"command={self.command}, expected three numbers: VX VY WZ")


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
    task = env.task
    if cfg.command or cfg.gait_plot:
        if not hasattr(task, "foot_contact"):
            raise ValueError(f"--command and --gait-plot need a legged task, not {run.task!r}")
    if cfg.command:
        task.fixed_commands = torch.tensor([cfg.command])
        env.reset()
    contacts = []
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
            if cfg.gait_plot:
                contacts.append(task.contact[0].numpy().copy())
    feet = getattr(task, "feet", ())
    env.close()
    if cfg.gait_plot:
        print(gait_summary(np.array(contacts), feet))
        write_gait_plot(np.array(contacts), feet, env.control_dt, cfg.gait_plot)
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


def foot_pairing(contacts: np.ndarray, feet: tuple[str, ...]) -> dict[str, float]:
    """Share of control steps on which two feet are in the same state (both in contact or
    both in swing), for the diagonal, lateral (left-right) and same-side pairs of a
    quadruped named by its sites' FL/FR/RL/RR prefixes. A trot: diagonal near 1, the other
    two near 0; a pace: same-side near 1; a bound: lateral near 1."""
    index = {f.split("_")[0]: i for i, f in enumerate(feet)}
    if not {"FL", "FR", "RL", "RR"} <= set(index):
        return {}
    agree = lambda a, b: float((contacts[:, index[a]] == contacts[:, index[b]]).mean())  # noqa: E731
    return {
        "diagonal": (agree("FL", "RR") + agree("FR", "RL")) / 2,
        "lateral": (agree("FL", "FR") + agree("RL", "RR")) / 2,
        "same_side": (agree("FL", "RL") + agree("FR", "RR")) / 2,
        "stance": float(contacts.mean()),
    }


def gait_summary(contacts: np.ndarray, feet: tuple[str, ...]) -> str:
    pairs = foot_pairing(contacts, feet)
    if not pairs:
        return f"stance share per foot: {dict(zip(feet, contacts.mean(0).round(2), strict=True))}"
    return (
        f"feet in the same state: diagonal pairs {pairs['diagonal']:.2f}, left-right "
        f"{pairs['lateral']:.2f}, front-rear {pairs['same_side']:.2f}; in stance "
        f"{pairs['stance']:.2f} of the time (a trot: diagonal near 1, the others near 0)"
    )


def write_gait_plot(contacts: np.ndarray, feet: tuple[str, ...], dt: float, path: str) -> None:
    """A contact diagram: one row per foot, dark where the foot is on the ground."""
    from PIL import Image, ImageDraw

    steps, rows, cell, label = len(contacts), len(feet), 4, 80
    img = Image.new("RGB", (label + steps * cell + 10, rows * 24 + 30), "white")
    draw = ImageDraw.Draw(img)
    for r, foot in enumerate(feet):
        y = 10 + r * 24
        draw.text((5, y + 4), foot, fill="black")
        for k in np.flatnonzero(contacts[:, r]):
            x = label + k * cell
            draw.rectangle([x, y, x + cell - 1, y + 18], fill=(40, 40, 40))
    for k in range(0, steps, round(0.5 / dt)):
        x = label + k * cell
        draw.text((x, rows * 24 + 14), f"{k * dt:.1f}s", fill="gray")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
