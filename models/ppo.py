"""PPO settings as a typed config, and the one adapter to rsl-rl's dict config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(kw_only=True)
class PPOConfig:
    num_steps_per_env: int = 24
    hidden_dims: tuple[int, ...] = (128, 128)
    activation: str = "elu"
    init_std: float = 1.0
    learning_rate: float = 1e-3
    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    clip_param: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    entropy_coef: float = 0.005
    desired_kl: float = 0.01
    max_grad_norm: float = 1.0
    save_interval: int = 50
    obs_normalization: bool = True
    # Residual RL: the actor adds residual_scale * tanh(MLP) to this frozen exported policy.
    base_policy: str = ""
    residual_scale: float = 0.2
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "num_steps_per_env",
            "num_learning_epochs",
            "num_mini_batches",
            "save_interval",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"ppo.{name}={getattr(self, name)}, expected >= 1")
        if self.base_policy and not self.residual_scale > 0:
            raise ValueError(f"ppo.residual_scale={self.residual_scale}, expected > 0")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"ppo.learning_rate={self.learning_rate}, expected in (0, 1)")


def ppo_config(values: dict, edits: tuple[str, ...] | list[str] = ()) -> PPOConfig:
    """PPOConfig from `values` with KEY=VALUE `edits` (VALUE: JSON, or a comma list)."""
    from xembody.sim.tasks import parse_value

    values = dict(values)
    names = {f.name for f in dataclasses.fields(PPOConfig)}
    for item in edits:
        key, sep, text = item.partition("=")
        if not sep or key not in names:
            raise ValueError(
                f"ppo option {item!r}, expected KEY=VALUE with KEY one of {sorted(names)}"
            )
        value = parse_value(text)
        values[key] = tuple(value) if isinstance(value, list) else value
    return PPOConfig(**values)


def rsl_rl_config(cfg: PPOConfig) -> dict:
    """rsl-rl 5.x OnPolicyRunner config for `cfg` (actor sees "policy", critic "critic")."""
    model = {
        "hidden_dims": list(cfg.hidden_dims),
        "activation": cfg.activation,
        "obs_normalization": cfg.obs_normalization,
    }
    actor = {
        "class_name": "MLPModel",
        **model,
        "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": cfg.init_std},
    }
    if cfg.base_policy:
        actor["class_name"] = "xembody.models.residual:ResidualModel"
        actor["base_policy"] = cfg.base_policy
        actor["residual_scale"] = cfg.residual_scale
    return {
        "num_steps_per_env": cfg.num_steps_per_env,
        "save_interval": cfg.save_interval,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "logger": "tensorboard",
        "actor": actor,
        "critic": {"class_name": "MLPModel", **model},
        "algorithm": {
            "class_name": "PPO",
            "learning_rate": cfg.learning_rate,
            "num_learning_epochs": cfg.num_learning_epochs,
            "num_mini_batches": cfg.num_mini_batches,
            "clip_param": cfg.clip_param,
            "gamma": cfg.gamma,
            "lam": cfg.lam,
            "entropy_coef": cfg.entropy_coef,
            "desired_kl": cfg.desired_kl,
            "max_grad_norm": cfg.max_grad_norm,
            "schedule": "adaptive",
            **cfg.extra,
        },
    }
