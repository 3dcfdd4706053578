"""`xembody eval`: run a trained policy for N episodes and report success rate and the
task's metrics (for example tracking error) with 95% confidence intervals.

Success uses the Wilson score interval; metric means use mean +- 1.96 standard errors of
the per-episode means. `--policy zero` evaluates the untrained baseline of holding the
default pose (zero actions), `--policy random` a unit Gaussian policy.

`--checkpoint` is a training checkpoint (or run folder), or an export folder (policy.json,
as `xembody export` and `xembody generalist export` write): then its TorchScript network
runs on the task and body the contract names, and `--transfer` skips the export step.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from xembody.config import add_arguments, field, from_args


@dataclass(kw_only=True)
class EvalConfig:
    checkpoint: str = field(
        "", "checkpoint file, run folder (latest checkpoint) or export folder (policy.json)"
    )
    episodes: int = field(100, "episodes to evaluate")
    num_envs: int = field(0, "parallel envs (0: min(episodes, 256))")
    seed: int = field(1, "seed of the evaluation episodes")
    randomize: bool = field(True, "evaluate under the training randomisation")
    policy: str = field("trained", "trained | zero | random")
    backend: str = field("cpu", "physics: cpu (MuJoCo), warp:cpu or gpu (MuJoCo Warp)")
    transfer: bool = field(
        False,
        "sim-to-sim table: nominal physics on MuJoCo and MuJoCo Warp, then the exported "
        "policy through the robot-side controller on the nominal robot and on the real-proxy",
    )
    json: bool = field(False, "print the result as JSON")
    out: str = field("", "also write the JSON result to this file")

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError("give --checkpoint (a model_<it>.pt file or a run folder)")
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes}, expected >= 1")
        if self.policy not in ("trained", "zero", "random"):
            raise ValueError(f"policy={self.policy!r}, expected trained, zero or random")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a policy: success rate and metrics with 95%% CIs")
    add_arguments(p, EvalConfig)
    p.set_defaults(run=lambda args: _run_cli(from_args(EvalConfig, args)))


def _run_cli(cfg: EvalConfig) -> int:
    result = transfer(cfg) if cfg.transfer else evaluate(cfg)
    text = json.dumps(result, indent=2)
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(text)
    if cfg.json:
        print(text)
    elif cfg.transfer:
        print(transfer_table(result))
    else:
        s = result["success_rate"]
        print(
            f"{result['task']} on {result['body']} ({result['policy']} policy, "
            f"{result['episodes']} episodes): success {100 * s['mean']:.1f}% "
            f"[{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}]"
        )
        t = result["termination_rate"]
        print(
            f"  terminated (fell): {100 * t['mean']:.1f}% "
            f"[{100 * t['ci95'][0]:.1f}, {100 * t['ci95'][1]:.1f}]"
        )
        for name, m in result["metrics"].items():
            print(f"  {name}: {m['mean']:.4f} [{m['ci95'][0]:.4f}, {m['ci95'][1]:.4f}]")
    return 0


def load_policy(checkpoint: str | Path, env):
    """The trained deterministic policy of `checkpoint`, acting on `env`'s observations."""
    from xembody.models.run import load_runner

    return load_runner(checkpoint, env).get_inference_policy()


def is_export(path: str | Path) -> bool:
    """Whether `path` is an export folder (it holds policy.json)."""
    from xembody.models.exported import SIDECAR_FILE

    return (Path(path) / SIDECAR_FILE).is_file()


def _export_env(cfg: EvalConfig, n: int):
    """(env, TorchScript policy, contract) of the export folder `cfg.checkpoint`: the
    contract's task (its saved config) on the body it names or bundles."""
    from xembody.models.exported import read_contract
    from xembody.real.gap import policy_body
    from xembody.sim import tasks
    from xembody.sim.bodies.reference import resolve_body

    folder = Path(cfg.checkpoint)
    contract = read_contract(folder)
    emb = resolve_body(*policy_body(folder, contract))
    task_cfg = tasks.config_from_dict(contract["task"], contract["task_cfg"])
    env = tasks.make_env(contract["task"], emb, n, cfg=task_cfg, randomize=cfg.randomize,
                         seed=cfg.seed, backend=cfg.backend, num_threads=1)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream
        net = torch.jit.load(str(folder / contract["files"]["torchscript"]), env.device)
    return env, (lambda obs: net(obs["policy"])), contract


def evaluate(cfg: EvalConfig) -> dict:
    from xembody.models.evaluation import run_episodes, summarize
    from xembody.models.run import Run, latest_checkpoint, make_env

    torch.set_num_threads(1)  # small MLPs: torch threads would compete with the physics
    n = cfg.num_envs or min(cfg.episodes, 256)
    if is_export(cfg.checkpoint):
        if cfg.policy != "trained":
            raise ValueError(f"policy={cfg.policy!r} with an export folder: expected trained")
        env, policy, contract = _export_env(cfg, n)
        about = {"task": contract["task"], "body": env.task.emb.name, "policy": "exported",
                 "checkpoint": str(cfg.checkpoint)}  # fmt: skip
    else:
        run = Run.load(cfg.checkpoint)
        env = make_env(run, n, seed=cfg.seed, randomize=cfg.randomize, backend=cfg.backend)
        if cfg.policy == "trained":
            policy = load_policy(cfg.checkpoint, env)
        elif cfg.policy == "zero":
            policy = lambda obs: torch.zeros(n, env.num_actions)  # noqa: E731
        else:
            policy = lambda obs: torch.randn(n, env.num_actions)  # noqa: E731
        ckpt = latest_checkpoint(cfg.checkpoint) if cfg.policy == "trained" else None
        about = {"task": run.task, "body": run.body.name, "policy": cfg.policy,
                 "checkpoint": str(ckpt) if ckpt else None}  # fmt: skip
    records = run_episodes(env, policy, cfg.episodes)
    env.close()
    return (
        summarize(records)
        | about
        | {
            "randomize": cfg.randomize,
            "seed": cfg.seed,
            "backend": cfg.backend,
        }
    )


def transfer(cfg: EvalConfig) -> dict:
    """The policy of `cfg.checkpoint` under nominal physics (no randomisation) on MuJoCo,
    on MuJoCo Warp (CUDA when torch sees one, else Warp's CPU device), then exported (unless
    it is an export folder already) and run as on a robot (one `PolicyController` per
    robot, readings in, targets out) on the nominal robot and on the real-proxy (latency,
    friction, backlash, sensor noise).
    Returns {case: {metric: mean}} and each metric's change against the first case."""
    import dataclasses
    import tempfile

    from xembody.models.export import export_policy
    from xembody.models.exported import read_contract
    from xembody.real.gap import closed_loop, policy_body
    from xembody.real.proxy import ProxyConfig, RobotConfig

    warp = "warp:cuda" if torch.cuda.is_available() else "warp:cpu"
    rows: dict[str, dict[str, float]] = {}
    for name, backend in (("MuJoCo (CPU)", "cpu"), (f"MuJoCo Warp ({warp[5:]})", warp)):
        r = evaluate(dataclasses.replace(cfg, randomize=False, backend=backend))
        rows[name] = _flat(r)
    with tempfile.TemporaryDirectory() as tmp:
        exported = is_export(cfg.checkpoint)
        folder = Path(cfg.checkpoint) if exported else Path(tmp)
        if not exported:
            export_policy(Path(cfg.checkpoint), folder)
        contract = read_contract(folder)
        body, seed = policy_body(folder, contract)
        envs = cfg.num_envs or min(cfg.episodes, 32)
        episodes = max(1, -(-cfg.episodes // envs))  # episode lengths per robot
        for name, proxy in (
            ("robot side, nominal", None),
            ("robot side, real-proxy", ProxyConfig()),
        ):
            robot = RobotConfig(body=body, body_seed=seed, seed=cfg.seed, proxy=proxy)
            r = closed_loop(folder, robot, num_envs=envs, episodes=episodes, seed=cfg.seed)
            rows[name] = {k: float(v) for k, v in r.items() if k in rows["MuJoCo (CPU)"]}
    base = rows["MuJoCo (CPU)"]
    return {"task": contract["task"], "checkpoint": str(cfg.checkpoint), "cases": rows,
            "change": {case: {k: v - base[k] for k, v in row.items() if k in base}
                       for case, row in rows.items()}}  # fmt: skip


def _flat(result: dict) -> dict[str, float]:
    out = {
        "success": result["success_rate"]["mean"],
        "terminated": result["termination_rate"]["mean"],
        "episodes": result["episodes"],
    }
    return out | {k: m["mean"] for k, m in result["metrics"].items()}


def transfer_table(result: dict) -> str:
    cases = result["cases"]
    keys = [k for k in next(iter(cases.values())) if k != "episodes"]
    lines = ["| case | episodes | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for case, row in cases.items():
        cells = [f"{row[k]:.3f}" if k in row else "-" for k in keys]
        lines.append(f"| {case} | {int(row.get('episodes', 0))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
