"""`xembody demo`: the main job in miniature.

1. bodies: sample one body of each class;
2. physics: randomise them per env and simulate them together on the CPU (one flat batch
   over all bodies), print a table and save a picture;
3. training: PPO on the arm reaching task for a short budget, evaluated against the
   untrained policy (the same episodes);
4. export: ONNX + TorchScript + contract, checked by the robot-side loader;
5. one policy for two bodies: IK-teacher demonstrations on two arms with different joint
   counts, stored as zarr datasets, cloned into one joint-token student;
6. the reality gap: the real-proxy robot, a joint-wise dynamics model fit on its data,
   and action adaptation;
7. ROS 2: the mobile-base graph (sim robot, safety, policy, recorder) as separate
   processes over DDS, its recording read back;
9. digital cousins: a generated room scanned from one view, its objects extracted, and its
   twin and two cousins built with their physical checks.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import torch

from xembody import demo_stages
from xembody.config import add_arguments, field, from_args, save_config
from xembody.sim import bodies as body_registry
from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.physics import MultiBodySim


@dataclass(kw_only=True)
class DemoConfig:
    seed: int = field(0, "seed for the bodies and the randomisation")
    envs_per_body: int = field(32, "parallel envs of each body")
    seconds: float = field(2.0, "simulated time")
    control_hz: float = field(50.0, "rate of the (scripted) controller")
    threads: int = field(0, "physics threads (0: every core)")
    out: str = field("out/demo", "folder for the picture, MJCF files and config")
    picture: bool = field(True, "render a picture of the bodies")
    train_iterations: int = field(100, "PPO iterations of the reaching demo (0: skip training)")
    train_envs: int = field(128, "envs of the reaching demo")
    student_epochs: int = field(30, "cloning epochs of the two-arm student (0: skip)")
    gap_minutes: float = field(1.0, "minutes of proxy data for the reality-gap stage (0: skip)")
    ros_seconds: float = field(15.0, "seconds of the ROS 2 graph (0: skip)")
    cousins: bool = field(True, "scan a generated room and build its twin and two cousins")
    vendor_iterations: int = field(
        40, "PPO iterations of reaching on the vendor-style URDF arm (-1: skip the stage; "
        "0: check the vendor files only)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("envs_per_body", "seconds", "control_hz"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")
        if self.train_iterations < 0 or self.train_envs < 1:
            raise ValueError("train_iterations must be >= 0 and train_envs >= 1")
        if self.threads < 0:
            raise ValueError(f"threads={self.threads}, expected >= 0")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on the CPU (bodies + batched physics)")
    add_arguments(p, DemoConfig)
    p.set_defaults(run=lambda args: run(from_args(DemoConfig, args)))


def scripted_ctrl(emb: Embodiment, t: float, n: int, phase: np.ndarray) -> np.ndarray:
    """Smooth exploratory targets: small sines about the default pose, or wheel speeds."""
    lo, hi = np.array(emb.action.low), np.array(emb.action.high)
    if emb.action.kind == "joint_position":
        amp = 0.08 * np.minimum(hi - lo, 2.0)
        target = emb.default_pose + amp * np.sin(2 * math.pi * 0.7 * t + phase)
    else:
        target = 0.4 * hi * np.sin(2 * math.pi * 0.25 * t + phase)
    return np.clip(target, lo, hi)[None].repeat(n, 0)


def randomise(multi: MultiBodySim, rng: np.random.Generator) -> None:
    """Per-env mass, friction and motor strength, as embodiment/domain randomisation."""
    for sim in multi.groups:
        n, m = sim.num_envs, sim.model
        sim.set_params("body_mass", m.body_mass * rng.uniform(0.8, 1.2, (n, 1)))
        friction = np.repeat(m.geom_friction[None], n, 0)
        friction[:, :, 0] *= rng.uniform(0.5, 1.25, (n, 1))
        sim.set_params("geom_friction", friction)
        kp = sim.get_params("actuator_kp").numpy()
        sim.set_params("actuator_kp", kp * rng.uniform(0.8, 1.2, (n, 1)))


def run(cfg: DemoConfig) -> int:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.json")
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    bodies = [body_registry.sample(c, seed=cfg.seed) for c in body_registry.names()]
    models = [b.compile() for b in bodies]
    for b in bodies:
        b.write(out / f"{b.name}.xml")
    print(
        f"[1/10] sampled {len(bodies)} bodies (seed {cfg.seed}) in {time.perf_counter() - t0:.1f} s"
    )

    multi = MultiBodySim(models, cfg.envs_per_body, num_threads=cfg.threads or None)
    randomise(multi, rng)
    multi.reset()
    start_base = [_base_pos(b, s) for b, s in zip(bodies, multi.groups, strict=True)]
    start_height = [p[:, 2].clone() for p in start_base]
    phases = [rng.uniform(0, 2 * math.pi, b.num_actions) for b in bodies]

    control_dt = 1.0 / cfg.control_hz
    substeps = multi.substeps_for(control_dt)
    n_control = int(round(cfg.seconds / control_dt))
    t0 = time.perf_counter()
    for k in range(n_control):
        for b, sim, ph in zip(bodies, multi.groups, phases, strict=True):
            sim.ctrl[:] = torch.from_numpy(scripted_ctrl(b, k * control_dt, sim.num_envs, ph))
        multi.step(substeps)
    wall = time.perf_counter() - t0
    physics_steps = n_control * sum(
        s * g.num_envs for s, g in zip(substeps, multi.groups, strict=True)
    )
    print(
        f"[2/10] simulated {multi.num_envs} envs x {cfg.seconds:.1f} s in {wall:.2f} s wall "
        f"({physics_steps / wall:,.0f} physics steps/s, {multi.groups[0].num_threads} threads)"
    )

    rows = []
    for b, m, sim, p0, h0 in zip(
        bodies, models, multi.groups, start_base, start_height, strict=True
    ):
        p1 = _base_pos(b, sim)
        moved = (p1[:, :2] - p0[:, :2]).norm(dim=1).mean().item()
        kept = (p1[:, 2] > 0.6 * h0).float().mean().item() if b.floating_base else 1.0
        rows.append(
            (
                b.name,
                b.body_class,
                b.num_actions,
                m.nq,
                float(m.body_subtreemass[0]),
                sim.num_envs,
                moved,
                p1[:, 2].mean().item(),
                kept,
                int(sim.diverged.sum()),
            )
        )
    _print_table(rows)

    if cfg.picture:
        from xembody.sim.render import render_grid, render_model, save_png

        images = []
        for m, sim in zip(models, multi.groups, strict=True):
            d = mujoco.MjData(m)
            d.qpos[:] = sim.qpos[0].numpy()
            mujoco.mj_forward(m, d)
            images.append(render_model(m, d, width=480, height=360))
        grid = render_grid(images, [f"{b.name} ({b.num_actions} joints)" for b in bodies], cols=2)
        path = save_png(grid, out / "bodies.png")
        print(f"[3/10] picture of the bodies after {cfg.seconds:.1f} s -> {path}")
    diverged = sum(r[-1] for r in rows)
    multi.close()
    summary = [
        f"{len(bodies)} body classes, {multi.num_envs} randomised envs stepped in one batch "
        f"on the CPU ({physics_steps / wall:,.0f} physics steps/s); {diverged} diverged"
    ]
    if cfg.train_iterations:
        summary += train_and_export(cfg, out)
    if cfg.student_epochs:
        print("[6/10] one student for two arms: IK-teacher demos -> zarr -> behaviour cloning")
        summary += demo_stages.cross_embodiment(out, cfg.seed, cfg.student_epochs)
    if cfg.gap_minutes:
        print("[7/10] reality gap: real-proxy arm data -> joint-wise dynamics -> adaptation")
        summary += demo_stages.reality_gap(out, cfg.seed, cfg.gap_minutes)
    if cfg.ros_seconds:
        print(f"[8/10] ROS 2 graph of the mobile base for {cfg.ros_seconds:g} s (xembody launch)")
        summary += demo_stages.ros_graph(out, cfg.ros_seconds)
    if cfg.cousins:
        print("[9/10] digital cousins: scan a generated room -> extract -> twin + 2 cousins")
        summary += demo_stages.digital_cousins(out, cfg.seed)
    if cfg.vendor_iterations >= 0:
        print("[10/10] a vendor's robot file: URDF -> bodies check -> train -> export")
        summary += demo_stages.vendor_robot(out, cfg.seed, cfg.vendor_iterations)
    print("\nSummary:")
    for line in summary:
        print(f"  - {line}")
    print(f"  Outputs in {out}/.")
    return 0 if diverged == 0 else 1


def train_and_export(cfg: DemoConfig, out: Path) -> list[str]:
    """Stages 3-4: a short PPO run on reaching, its evaluation and export."""
    from xembody.evaluate import EvalConfig, evaluate
    from xembody.models.export import export_policy
    from xembody.models.exported import ExportedPolicy
    from xembody.models.run import latest_checkpoint
    from xembody.models.training import TrainConfig, train

    print(
        f"[4/10] training reach on an arm: {cfg.train_envs} envs x "
        f"{cfg.train_iterations} iterations"
    )
    t0 = time.perf_counter()
    with _quiet():
        run = train(
            TrainConfig(
                task="reach", num_envs=cfg.train_envs, iterations=cfg.train_iterations,
                seed=cfg.seed, log_root=str(out / "runs"), run_name="reach",
                threads=cfg.threads, save_interval=max(cfg.train_iterations, 1),
            )
        )  # fmt: skip
        results = {
            p: evaluate(EvalConfig(checkpoint=str(run), episodes=64, policy=p, randomize=False))
            for p in ("zero", "trained")
        }
    minutes = (time.perf_counter() - t0) / 60
    err = {p: r["metrics"]["pos_error_m"]["mean"] for p, r in results.items()}
    succ = {p: r["success_rate"]["mean"] for p, r in results.items()}
    print(f"      {'policy':<10} {'pos error m':>12} {'success':>8}")
    for p in ("zero", "trained"):
        print(f"      {p:<10} {err[p]:>12.3f} {100 * succ[p]:>7.0f}%")
    ckpt = latest_checkpoint(run)
    with _quiet():
        export_policy(ckpt, out / "policy")
    exported = ExportedPolicy.load(out / "policy")
    print(f"[5/10] exported {ckpt.name} -> {out / 'policy'} (ONNX, TorchScript, policy.json)")
    return [
        f"reach: {cfg.train_iterations} PPO iterations in {minutes:.1f} min; mean position error "
        f"{err['zero']:.3f} m untrained -> {err['trained']:.3f} m trained "
        f"({100 * (1 - err['trained'] / err['zero']):.0f}% lower), "
        f"success {100 * succ['trained']:.0f}% (longer runs: docs/TRAINING.md)",
        f"exported policy: {exported.contract['obs_dim']} observations -> "
        f"{exported.contract['num_actions']} joint targets at "
        f"{exported.contract['control_hz']:g} Hz, loadable without the training stack",
    ]


@contextlib.contextmanager
def _quiet():
    """Silence rsl-rl's per-iteration report inside the demo (the demo prints its own)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _base_pos(emb: Embodiment, sim) -> torch.Tensor:
    """World position of the base body, or of the end effector for fixed-base bodies."""
    if emb.floating_base or emb.sensors.ee_site is None:
        body = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_BODY, emb.sensors.base_body)
    else:
        site = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_SITE, emb.sensors.ee_site)
        body = sim.model.site_bodyid[site]
    return sim.body_pos[:, body].clone()


def _print_table(rows: list[tuple]) -> None:
    head = (
        "body",
        "class",
        "joints",
        "nq",
        "mass kg",
        "envs",
        "moved m",
        "height m",
        "upright",
        "diverged",
    )
    fmt = "{:<22} {:<10} {:>6} {:>4} {:>8} {:>5} {:>8} {:>9} {:>8} {:>8}"
    print(fmt.format(*head))
    for r in rows:
        print(
            fmt.format(
                r[0],
                r[1],
                r[2],
                r[3],
                f"{r[4]:.2f}",
                r[5],
                f"{r[6]:.3f}",
                f"{r[7]:.3f}",
                f"{100 * r[8]:.0f}%",
                r[9],
            )
        )
