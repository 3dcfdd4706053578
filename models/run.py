"""A training run on disk: what `train` writes next to its checkpoints and what `eval`,
`play`, `export` and `--resume` read back.

    runs/<task>-<body>/<stamp>/
        run.json          task name, task config, PPO config, train settings (resolved)
        body.xml(.json)   the exact body trained on
        model_<it>.pt     rsl-rl checkpoints (weights, optimizer, iteration)
        events.out.*      TensorBoard logs
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from xembody.models.ppo import PPOConfig
from xembody.sim import tasks
from xembody.sim.bodies.embodiment import Embodiment
from xembody.sim.bodies.reference import resolve_body
from xembody.sim.tasks.base import TaskConfig

RUN_FILE = "run.json"
BODY_FILE = "body.xml"

__all__ = ["Run", "latest_checkpoint", "load_runner", "make_env", "resolve_body"]


@dataclass
class Run:
    task: str
    task_cfg: TaskConfig
    ppo: PPOConfig
    body: Embodiment
    settings: dict

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.body.write(folder / BODY_FILE)
        doc = {
            "format": "xembody-run/1",
            "task": self.task,
            "task_cfg": dataclasses.asdict(self.task_cfg),
            "ppo": dataclasses.asdict(self.ppo),
            "settings": self.settings,
        }
        (folder / RUN_FILE).write_text(json.dumps(doc, indent=2, default=str))

    @classmethod
    def load(cls, checkpoint_or_folder: str | Path) -> Run:
        path = Path(checkpoint_or_folder)
        folder = path if path.is_dir() else path.parent
        run_file = folder / RUN_FILE
        if not run_file.is_file():
            raise FileNotFoundError(f"{run_file}: no run description next to {path}")
        doc = json.loads(run_file.read_text())
        ppo = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["ppo"].items()}
        return cls(
            task=doc["task"],
            task_cfg=tasks.config_from_dict(doc["task"], doc["task_cfg"]),
            ppo=PPOConfig(**ppo),
            body=Embodiment.read(folder / BODY_FILE),
            settings=doc["settings"],
        )


def latest_checkpoint(folder: str | Path) -> Path:
    """The checkpoint with the highest iteration in `folder` (or `folder` itself if a file)."""
    folder = Path(folder)
    if folder.is_file():
        return folder
    found = sorted(folder.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if not found:
        raise FileNotFoundError(f"{folder}: no model_<iteration>.pt checkpoint")
    return found[-1]


def load_runner(checkpoint: str | Path, env, *, base_policy: str | Path | None = None):
    """An rsl-rl OnPolicyRunner for `env` with the actor weights of `checkpoint` (a
    model_<it>.pt or a run folder: its latest checkpoint), without logging. `base_policy`:
    where a residual run's frozen base is now, if not where training found it (a moved
    folder)."""
    import contextlib
    import io

    from rsl_rl.runners import OnPolicyRunner

    from xembody.models.ppo import rsl_rl_config

    run = Run.load(checkpoint)
    if base_policy is not None:
        run.ppo = dataclasses.replace(run.ppo, base_policy=str(base_policy))
    # On the env's device: a policy on the CPU cannot act on a CUDA env's observations.
    device = str(getattr(env, "device", "cpu"))
    with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the model summary
        runner = OnPolicyRunner(env, rsl_rl_config(run.ppo), log_dir=None, device=device)
    # The actor only: evaluation and export need no critic (whose inputs grew when tasks
    # gained privileged terms, so older runs' critics no longer fit) and no optimizer.
    runner.load(
        str(latest_checkpoint(checkpoint)),
        load_cfg={"actor": True, "iteration": True},
        map_location=device,
    )  # a run trained on a GPU evaluates on a CPU-only machine
    return runner


def make_env(run: Run, num_envs: int, *, seed: int = 0, threads: int | None = None,
             randomize: bool = True, backend: str = "cpu"):  # fmt: skip
    """The run's task on the run's body, N envs (`randomize=False`: nominal physics, no
    noise, pushes or latency, as for evaluation of the nominal case) on physics `backend`."""
    return tasks.make_env(run.task, run.body, num_envs, cfg=run.task_cfg, randomize=randomize,
                          seed=seed, backend=backend, num_threads=threads)  # fmt: skip
