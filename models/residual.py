"""Residual RL: a PPO actor that adds a bounded correction to a frozen base policy.

    action = base(obs) + residual_scale * tanh(mlp(normalize(obs)))

The base is any exported policy (its TorchScript `policy.pt`, observation normalisation
inside); it is frozen. The residual MLP's last layer starts at zero, so at initialisation
the actor's deterministic action *is* the base's action, bit for bit; PPO then learns the
correction, and the critic learns from scratch. The Gaussian exploration noise sits on top
of the sum, as in a plain PPO actor.

`ResidualModel` is an rsl-rl 5 model class (a subclass of `MLPModel`), so it plugs into
rsl-rl's PPO through the actor config:

    {"class_name": "xembody.models.residual:ResidualModel", "base_policy": "<export dir>",
     "residual_scale": 0.2, "hidden_dims": [...], "distribution_cfg": {...}}

The base's observation layout must equal the env's: `check_base_layout` compares the
sidecar's terms with the env's and names the first difference.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict
from torch import nn

from xembody.models.exported import TORCHSCRIPT_FILE, read_contract


def load_base(folder: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The frozen TorchScript network and the contract of the export in `folder`."""
    folder = Path(folder)
    contract = read_contract(folder)
    path = folder / contract["files"].get("torchscript", TORCHSCRIPT_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the base policy's TorchScript file is missing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module, contract


def check_base_layout(contract: dict[str, Any], env_terms: list[dict[str, Any]]) -> None:
    """Raise ValueError unless the base policy reads the env's observation layout."""
    base_terms = contract["observation"]["terms"]
    key = lambda t: (t["name"], int(t["start"]), int(t["size"]))  # noqa: E731
    for i, (b, e) in enumerate(zip(base_terms, env_terms, strict=False)):
        if key(b) != key(e):
            raise ValueError(
                f"base policy observation term {i} is {key(b)}, the env's is {key(e)}; "
                "the base must be trained on the same task observation layout"
            )
    if len(base_terms) != len(env_terms):
        raise ValueError(
            f"base policy has {len(base_terms)} observation terms, the env {len(env_terms)}"
        )


class ResidualModel(MLPModel):
    """rsl-rl actor: frozen base policy + residual_scale * tanh(MLP) (see the module doc)."""

    def __init__(
        self,
        obs: TensorDict,
        obs_groups: dict[str, list[str]],
        obs_set: str,
        output_dim: int,
        base_policy: str = "",
        residual_scale: float = 0.2,
        **mlp_kwargs: Any,
    ) -> None:
        super().__init__(obs, obs_groups, obs_set, output_dim, **mlp_kwargs)
        if not base_policy:
            raise ValueError("ResidualModel needs base_policy: an export folder")
        if not residual_scale > 0:
            raise ValueError(f"residual_scale={residual_scale}, expected > 0")
        self.base, contract = load_base(base_policy)
        if int(contract["obs_dim"]) != self.obs_dim or int(contract["num_actions"]) != output_dim:
            raise ValueError(
                f"base policy {base_policy} maps {contract['obs_dim']} observations to "
                f"{contract['num_actions']} actions; this actor needs {self.obs_dim} -> "
                f"{output_dim}"
            )
        self.residual_scale = float(residual_scale)
        last = self.mlp[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def _raw_obs(self, obs: TensorDict) -> torch.Tensor:
        return torch.cat([obs[g] for g in self.obs_groups], dim=-1)

    def forward(
        self,
        obs: TensorDict,
        masks: torch.Tensor | None = None,
        hidden_state: Any = None,
        stochastic_output: bool = False,
    ) -> torch.Tensor:
        with torch.no_grad():
            base = self.base(self._raw_obs(obs))
        mean = base + self.residual_scale * torch.tanh(self.mlp(self.get_latent(obs)))
        if stochastic_output:
            self.distribution.update(mean)
            return self.distribution.sample()
        return mean

    def train(self, mode: bool = True) -> ResidualModel:
        super().train(mode)
        self.base.eval()  # frozen: never in training mode
        return self

    def as_jit(self) -> nn.Module:
        return _ResidualInference(self)

    def as_onnx(self, verbose: bool) -> nn.Module:
        return _ResidualInference(self)


class _ResidualInference(nn.Module):
    """obs (B, obs_dim) -> the deterministic action, base included (for export)."""

    def __init__(self, model: ResidualModel) -> None:
        super().__init__()
        self.base = model.base
        self.obs_normalizer = copy.deepcopy(model.obs_normalizer)
        self.mlp = copy.deepcopy(model.mlp)
        self.residual_scale = model.residual_scale
        self.is_recurrent = False
        self.onnx_via_torchscript = True  # export.py picks the TorchScript-based ONNX exporter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = torch.tanh(self.mlp(self.obs_normalizer(x)))
        return self.base(x) + self.residual_scale * residual
