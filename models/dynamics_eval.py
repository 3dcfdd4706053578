"""Held-out errors of dynamics models: one-step and k-step rollouts, and the data-size study.

Errors are root-mean-square joint-position errors (rad) against the recorded readings of a
held-out session, over every joint and every start time whose whole window lies inside one
episode. A k-step rollout starts from recorded history and then feeds the model its own
predictions, with the recorded targets. The nominal simulator, the third predictor of
`study`, is `xembody.real.proxy.NominalSim` (it needs the robot of the dataset).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from xembody.models.dynamics import DynamicsConfig, fit, load_frames

# (q_hist, dq_hist, u_hist, u_future) -> q over the horizon, (B, K, nj); see model_rollout
Predictor = Callable[..., torch.Tensor]


def starts(episodes: list[dict], history: int, horizon: int, max_starts: int, seed: int = 0):
    """(episode, t) pairs with H frames before t and `horizon` after, at most `max_starts`."""
    pairs = [(e, t) for e, ep in enumerate(episodes)
             for t in range(history - 1, len(ep["q"]) - horizon)]  # fmt: skip
    rng = np.random.default_rng(seed)
    if len(pairs) > max_starts:
        pairs = [pairs[i] for i in np.sort(rng.choice(len(pairs), max_starts, replace=False))]
    return pairs


def _gather(episodes, pairs, history, horizon):
    """Histories (B, H, nj), future targets (B, K, nj), future readings (B, K, nj)."""

    def take(key, lo, hi):
        return torch.from_numpy(np.stack([episodes[e][key][t + lo : t + hi] for e, t in pairs]))

    hist = {k: take(k, 1 - history, 1) for k in ("q", "dq", "target")}
    return hist, take("target", 1, horizon), take("q", 1, horizon + 1)


@torch.no_grad()
def model_rollout(model, q_hist, dq_hist, u_hist, u_future) -> torch.Tensor:
    """q predicted for the K steps after the history, (B, K, nj); u_future (B, K-1, nj) are
    the targets sent at steps 1..K-1 (the target of step 0 is the last entry of u_hist)."""
    out = []
    for k in range(u_future.shape[1] + 1):
        q1, dq1 = model(q_hist, dq_hist, u_hist)
        out.append(q1)
        if k < u_future.shape[1]:
            q_hist = torch.cat([q_hist[:, 1:], q1[:, None]], 1)
            dq_hist = torch.cat([dq_hist[:, 1:], dq1[:, None]], 1)
            u_hist = torch.cat([u_hist[:, 1:], u_future[:, k : k + 1]], 1)
    return torch.stack(out, 1)


def rollout_errors(predict, episodes, history: int, horizon: int, max_starts: int) -> dict:
    """RMS position error (rad) of the first and the `horizon`-th predicted step."""
    pairs = starts(episodes, history, horizon, max_starts)
    hist, u_future, q_true = _gather(episodes, pairs, history, horizon)
    q_pred = predict(hist["q"], hist["dq"], hist["target"], u_future[:, : horizon - 1])
    err = (q_pred - q_true).square()
    return {
        "one_step_rmse": float(err[:, 0].mean().sqrt()),
        f"rollout{horizon}_rmse": float(err[:, -1].mean().sqrt()),
        "starts": len(pairs),
    }


def study(train_path, test_path, minutes: list[float], cfg: DynamicsConfig,
          horizon: int = 10, max_starts: int = 2000,
          nominal: Predictor | None = None) -> dict:  # fmt: skip
    """Fit the joint-wise model and the whole-body MLP on the first M minutes of
    `train_path` for each M in `minutes`; held-out errors on `test_path` for both and, when
    given, for the `nominal` predictor (the nominal simulator, which needs no data)."""
    from xembody.models.dataset_meta import dataset_body

    test, meta = load_frames(test_path)
    emb = dataset_body(meta)
    h = cfg.history
    result = {
        "train": str(train_path), "test": str(test_path), "body": emb.name,
        "test_frames": sum(len(ep["q"]) for ep in test), "history": h, "horizon": horizon,
        "config": cfg.__dict__,
        "by_minutes": [],
    }  # fmt: skip
    if nominal is not None:
        result["nominal_sim"] = rollout_errors(nominal, test, h, horizon, max_starts // 4)
    for m in minutes:
        train, _ = load_frames(train_path, m)
        row = {"minutes": m, "train_frames": sum(len(ep["q"]) for ep in train)}
        for kind in ("jointwise", "mlp"):
            model = fit(kind, emb, train, cfg)
            row[kind] = rollout_errors(
                lambda *a, model=model: model_rollout(model, *a), test, h, horizon, max_starts
            )
        result["by_minutes"].append(row)
    return result
