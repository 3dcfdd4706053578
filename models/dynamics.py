"""Learned joint dynamics: predict each joint's next reading from recent history.

Data: a dataset recorded by `xembody collect` (frames of `q`, `dq`, `target`, (nj,) each,
one per control period). A sample at time t is the history of the last H frames,
`q_hist`, `dq_hist`, `u_hist`: (B, H, nj) each (oldest first, u = the target sent in that
frame), and the next reading `q_{t+1}`, `dq_{t+1}`: (B, nj). Units: rad, rad/s.

Two models share that interface (`forward(q_hist, dq_hist, u_hist) -> (q_next, dq_next)`,
raw units in and out, normalisation inside, differentiable in every input):

- `JointwiseModel`: ONE network shared by every joint. Its input for joint j is j's own
  history (positions relative to the present one, velocities, targets relative to the
  present position; H steps each, plus the present position), a learned `latent`-dim
  encoding of all joints' present states (the same for every joint), and a joint
  descriptor (the Embodiment's gains, limits, kind, plus a small learned per-joint
  embedding). It outputs that joint's position change and next velocity.
- `WholeBodyMLP`: the baseline, one MLP from all joints' concatenated histories to every
  joint's next state.

`fit` trains either on the first `minutes` of a dataset (whole episodes first, the rest cut),
`xembody.models.dynamics_eval` gives one-step and k-step rollout errors on held-out data
(the nominal MuJoCo model, the other baseline, is `xembody.real.proxy.NominalSim`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from xembody.models.cfg import help_field
from xembody.sim.bodies.embodiment import Embodiment


@dataclass(kw_only=True)
class DynamicsConfig:
    history: int = help_field(5, "control periods of history per sample (H)")
    latent: int = help_field(8, "size of the whole-body encoding (joint-wise model)")
    hidden: int = help_field(128, "hidden width")
    steps: int = help_field(3000, "gradient steps")
    batch: int = help_field(256, "samples per batch")
    lr: float = help_field(1e-3, "Adam learning rate")
    seed: int = help_field(0, "initialisation and batching seed")

    def __post_init__(self) -> None:
        for name in ("history", "latent", "hidden", "steps", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr}, expected > 0")


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ELU()]
    return nn.Sequential(*layers[:-1])


def joint_descriptors(emb: Embodiment) -> torch.Tensor:
    """(nj, 8): log kp, log kd, log effort, log velocity limit, range low/high, default,
    slide flag (infinite values clipped)."""
    rows = []
    for j in emb.joints:
        lo, hi = (max(min(v, 10.0), -10.0) for v in j.range)
        vmax = min(j.velocity_limit, 100.0)
        rows.append([math.log1p(j.kp), math.log1p(j.kd), math.log1p(j.effort_limit),
                     math.log1p(vmax), lo, hi, j.default, float(j.kind == "slide")])  # fmt: skip
    return torch.tensor(rows, dtype=torch.float32)


class _Model(nn.Module):
    """Normalisation shared by both models: per-joint scales of q, dq and targets."""

    def __init__(self, num_joints: int, cfg: DynamicsConfig):
        super().__init__()
        self.nj, self.cfg = num_joints, cfg
        for name in ("q_mean", "q_std", "dq_std", "e_std", "dqn_std", "step_std"):
            self.register_buffer(name, torch.ones(num_joints))

    def set_stats(self, q: np.ndarray, dq: np.ndarray, u: np.ndarray) -> None:
        """Scales from training frames (T, nj) each."""
        t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        eps = 1e-4
        self.q_mean[:] = t(q.mean(0))
        self.q_std[:] = t(q.std(0) + eps)
        self.dq_std[:] = t(dq.std(0) + eps)
        self.e_std[:] = t((u - q).std(0) + eps)
        self.dqn_std[:] = t(dq.std(0) + eps)
        self.step_std[:] = t(np.diff(q, axis=0).std(0) + eps)

    def features(self, q_hist, dq_hist, u_hist) -> torch.Tensor:
        """(B, nj, 3H) per-joint history features, normalised."""
        q_now = q_hist[:, -1:]
        rel_q = (q_hist[:, :-1] - q_now) / self.step_std
        rel_u = (u_hist - q_now) / self.e_std
        vel = dq_hist / self.dq_std
        absq = (q_now - self.q_mean) / self.q_std
        return torch.cat([rel_q, rel_u, vel, absq], 1).transpose(1, 2)

    def decode(self, out: torch.Tensor, q_hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, nj, 2) normalised outputs -> q_next, dq_next (B, nj)."""
        return q_hist[:, -1] + out[..., 0] * self.step_std, out[..., 1] * self.dqn_std


class JointwiseModel(_Model):
    kind = "jointwise"

    def __init__(self, emb: Embodiment, cfg: DynamicsConfig):
        super().__init__(emb.num_actions, cfg)
        h, nj = cfg.history, self.nj
        self.register_buffer("descriptor", joint_descriptors(emb))
        self.embed = nn.Parameter(torch.zeros(nj, 4))
        self.encoder = mlp([nj * 3, cfg.hidden, cfg.latent])
        self.net = mlp([3 * h + cfg.latent + 8 + 4, cfg.hidden, cfg.hidden, 2])

    def forward(self, q_hist, dq_hist, u_hist):
        x = self.features(q_hist, dq_hist, u_hist)  # (B, nj, 3H)
        h = self.cfg.history
        present = x[:, :, [h - 1, 2 * h - 1, 3 * h - 1]]  # target error, velocity, position
        z = self.encoder(present.flatten(1))  # (B, latent): the whole-body summary
        b = x.shape[0]
        desc = torch.cat([self.descriptor, self.embed], 1).expand(b, -1, -1)
        inp = torch.cat([x, z[:, None].expand(-1, self.nj, -1), desc], 2)
        return self.decode(self.net(inp), q_hist)


class WholeBodyMLP(_Model):
    kind = "mlp"

    def __init__(self, emb: Embodiment, cfg: DynamicsConfig):
        super().__init__(emb.num_actions, cfg)
        nj, h = self.nj, cfg.history
        self.net = mlp([nj * 3 * h, 2 * cfg.hidden, 2 * cfg.hidden, nj * 2])

    def forward(self, q_hist, dq_hist, u_hist):
        x = self.features(q_hist, dq_hist, u_hist)
        return self.decode(self.net(x.flatten(1)).view(-1, self.nj, 2), q_hist)


MODELS = {"jointwise": JointwiseModel, "mlp": WholeBodyMLP}


# --- data -------------------------------------------------------------------------------
def load_frames(path, minutes: float | None = None) -> tuple[list[dict], dict]:
    """Episodes of a collected dataset as dicts of float32 (T, nj) arrays, cut to the first
    `minutes` of data (None: all), and the dataset meta."""
    from xembody.models.dataset import Dataset

    ds = Dataset.open(path, mode="r")
    budget = math.inf if minutes is None else round(minutes * 60 * ds.fps)
    episodes = []
    for i in range(ds.num_episodes):
        ep = {k: np.asarray(v, dtype=np.float32) for k, v in ds.episode(i).items()}
        n = int(min(len(ep["q"]), budget))
        if n < 2:
            break
        episodes.append({k: v[:n] for k, v in ep.items()})
        budget -= n
    if not episodes:
        raise ValueError(f"{path}: no data (minutes={minutes})")
    return episodes, ds.meta


def windows(episodes: list[dict], history: int) -> dict[str, torch.Tensor]:
    """Every sample of every episode: q/dq/u histories (B, H, nj) and next q/dq (B, nj).
    The first frames of an episode repeat the first frame as earlier history."""
    out: dict[str, list] = {k: [] for k in ("q", "dq", "u", "q_next", "dq_next")}
    for ep in episodes:
        q, dq, u = ep["q"], ep["dq"], ep["target"]
        pad = lambda x: np.concatenate([np.repeat(x[:1], history - 1, 0), x])  # noqa: E731
        qp, dqp, up = pad(q), pad(dq), pad(u)
        idx = np.arange(len(q) - 1)[:, None] + np.arange(history)[None]
        out["q"].append(qp[idx])
        out["dq"].append(dqp[idx])
        out["u"].append(up[idx])
        out["q_next"].append(q[1:])
        out["dq_next"].append(dq[1:])
    return {k: torch.from_numpy(np.concatenate(v)) for k, v in out.items()}


# --- training -----------------------------------------------------------------------------
def fit(kind: str, emb: Embodiment, episodes: list[dict], cfg: DynamicsConfig) -> _Model:
    """Train a `kind` model ("jointwise" or "mlp") on `episodes`; returns it in eval mode."""
    if kind not in MODELS:
        raise ValueError(f"model kind {kind!r}, expected one of {sorted(MODELS)}")
    torch.manual_seed(cfg.seed)
    model = MODELS[kind](emb, cfg)
    frames = {k: np.concatenate([ep[k] for ep in episodes]) for k in ("q", "dq", "target")}
    model.set_stats(frames["q"], frames["dq"], frames["target"])
    data = windows(episodes, cfg.history)
    n = len(data["q"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _ in range(cfg.steps):
        i = torch.randint(n, (min(cfg.batch, n),), generator=gen)
        q_next, dq_next = model(data["q"][i], data["dq"][i], data["u"][i])
        loss = (((q_next - data["q_next"][i]) / model.step_std).square().mean()
                + ((dq_next - data["dq_next"][i]) / model.dqn_std).square().mean())  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    model.train_frames = n
    return model


def save(model: _Model, emb: Embodiment, path, meta: dict | None = None) -> None:
    torch.save({"format": "xembody-dynamics/1", "kind": model.kind, "cfg": asdict(model.cfg),
                "body": emb.mjcf, "body_facts": _facts(emb), "state": model.state_dict(),
                "meta": meta or {}}, path)  # fmt: skip


def load(path) -> tuple[_Model, dict]:
    doc = torch.load(path, weights_only=False)
    if doc.get("format") != "xembody-dynamics/1":
        raise ValueError(f"{path}: not an xembody dynamics model")
    emb = _embodiment(doc)
    model = MODELS[doc["kind"]](emb, DynamicsConfig(**doc["cfg"]))
    model.load_state_dict(doc["state"])
    model.eval()
    model.joint_names = emb.joint_names  # what the rows of its inputs and outputs are
    return model, doc["meta"]


def _facts(emb: Embodiment) -> dict:
    import dataclasses

    d = dataclasses.asdict(emb)
    d.pop("mjcf")
    return d


def _embodiment(doc: dict) -> Embodiment:
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "body.xml"
        p.write_text(doc["body"])
        p.with_suffix(".xml.json").write_text(json.dumps(doc["body_facts"], default=float))
        return Embodiment.read(p)
