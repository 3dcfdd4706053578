"""Action adaptation: make a robot's joints do what the simulator would have done.

`ActionAdapter` sits between a sim-trained policy and the robot (in Python or as a stage of
the ROS 2 control loop; it needs only numpy, torch and the learned model). Each control
period it receives the latest joint reading and the policy's desired targets, and returns
the command to send instead:

    adapter = ActionAdapter(model, reference=nominal_model)   # models from models.dynamics
    adapter.reset(q, dq)                        # at episode start: (nj,) or (N, nj) readings
    command = adapter(q, dq, desired)           # each (nj,) or (N, nj), rad / rad/s / rad
    robot.send(command)

Method: optimisation over the command through the learned model of the robot. The command
u (held for `horizon` periods) is chosen by `iters` Adam steps to minimise

    sum_k ||(q_model(t+k | u) - q_ref(t+k)) / s||^2 + reg * ||(u - desired) / s||^2,

where q_model rolls the learned robot model forward from the recorded history (the
commands actually sent before), q_ref is the `reference` model (the same architecture fit
on nominal-simulator data) rolled forward from the same readings with the policy's own
targets (None: the desired targets themselves), and s the model's per-joint scale of
target errors. The offset u - desired is warm-started from the previous period, limited to
`max_offset`, and the command is clipped into the joint limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xembody.models.cfg import help_field


@dataclass(kw_only=True)
class AdaptConfig:
    horizon: int = help_field(6, "control periods the command is evaluated over (>= latency + 1)")
    iters: int = help_field(3, "Gauss-Newton steps per control period")
    reg: float = help_field(0.05, "weight of the squared offset from the desired target")
    smooth: float = help_field(0.2, "weight of the squared change from the previous command")
    max_step: float = help_field(0.5, "largest change per Gauss-Newton step (joint scales)")
    extrapolate: float = help_field(1.3, "weight of the last target change in predicting the next")
    max_offset: float = help_field(0.1, "largest |command - desired| per joint (rad)")

    def __post_init__(self) -> None:
        for name in ("horizon", "iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 1")
        for name in ("max_offset", "max_step"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected > 0")
        for name in ("reg", "smooth", "extrapolate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}, expected >= 0")


class ActionAdapter:
    """Adapts desired joint targets through a learned dynamics model (module docstring).

    `model`: the robot's learned model (`JointwiseModel` or `WholeBodyMLP`); `reference`:
    a model of the nominal simulator (or None); `limits`: (low, high) (nj,) each."""

    def __init__(self, model, reference=None, cfg: AdaptConfig | None = None,
                 limits: tuple[np.ndarray, np.ndarray] | None = None):  # fmt: skip
        self.model, self.reference = model, reference
        self.cfg = cfg or AdaptConfig()
        for m in (model, reference):
            if m is not None:
                m.eval()
                m.requires_grad_(False)
        self.nj, self.h = model.nj, model.cfg.history
        if reference is not None and (reference.nj, reference.cfg.history) != (self.nj, self.h):
            raise ValueError("reference model: joints or history differ from the robot model")
        self.set_limits(*(limits if limits is not None else (-np.inf, np.inf)))
        self.scale = model.e_std.detach().clone()
        self.hist: dict[str, torch.Tensor] = {}
        self.delay: int | None = None  # estimated latency (periods), set by `reset`

    def set_limits(self, low: np.ndarray | float, high: np.ndarray | float) -> None:
        """Commands are clipped into [low, high] ((nj,) each, or scalars)."""
        self.lo64 = np.broadcast_to(np.asarray(low, dtype=np.float64), (self.nj,)).copy()
        self.hi64 = np.broadcast_to(np.asarray(high, dtype=np.float64), (self.nj,)).copy()
        self.lo = torch.as_tensor(self.lo64, dtype=torch.float32)
        self.hi = torch.as_tensor(self.hi64, dtype=torch.float32)

    def reset(self, q: np.ndarray, dq: np.ndarray, env_ids: np.ndarray | None = None) -> None:
        """Start (or restart `env_ids` of) the history at readings q, dq ((N, nj) or (nj,))."""
        if self.delay is None:
            self.delay = self.estimate_delay(q, dq)
        q, dq = self._rows(q), self._rows(dq)
        if env_ids is None or not self.hist:
            n = len(q)
            self.hist = {k: torch.zeros(n, self.h, self.nj) for k in ("q", "dq", "u", "a")}
            self.offset = torch.zeros(n, self.nj)
            env_ids = np.arange(n)
        ids = torch.as_tensor(np.asarray(env_ids), dtype=torch.long)
        for key, x in (("q", q), ("dq", dq), ("u", q), ("a", q)):
            self.hist[key][ids] = x[: len(ids), None].expand(-1, self.h, -1)
        self.offset[ids] = 0.0

    def __call__(self, q: np.ndarray, dq: np.ndarray, desired: np.ndarray) -> np.ndarray:
        single = np.ndim(desired) == 1
        q, dq, a = self._rows(q), self._rows(dq), self._rows(desired)
        if not self.hist or len(self.hist["q"]) != len(a):
            self.reset(q, dq)
        shift = lambda x, new: torch.cat([x[:, 1:], new[:, None]], 1)  # noqa: E731
        hq, hdq = shift(self.hist["q"], q), shift(self.hist["dq"], dq)
        hu, ha = shift(self.hist["u"], a), shift(self.hist["a"], a)
        future = self._future(a, self.hist["a"][:, -1])
        if self.reference is not None:
            q_ref = self._rollout(self.reference, hq, hdq, ha, future)
        else:
            q_ref = future
        with torch.no_grad():
            c, sc = self.cfg, self.scale
            u_prev, u = hu[:, -2], a + self.offset
            two = lambda x: torch.cat([x, x])  # noqa: E731  # u and u + du in one batch
            h2, q_ref2 = (two(hq), two(hdq), two(hu)), two(q_ref)
            for _ in range(c.iters):  # Gauss-Newton, diagonal Jacobian by differences
                r, r_du = self._residual(*h2, torch.cat([u, u + 1e-3 * sc]), q_ref2).chunk(2)
                jac = (r_du - r) / 1e-3  # (N, K, nj), normalised
                grad = (jac * r).sum(1) + (c.reg * (u - a) + c.smooth * (u - u_prev)) / sc
                hess = (jac * jac).sum(1) + c.reg + c.smooth
                u = u - (grad / hess).clamp(-c.max_step, c.max_step) * sc
                u = a + (u - a).clamp(-c.max_offset, c.max_offset)
            u = torch.maximum(torch.minimum(u, self.hi), self.lo)
        self.offset = (u - a).detach()
        hu = torch.cat([hu[:, :-1], u[:, None]], 1)
        self.hist = {"q": hq, "dq": hdq, "u": hu, "a": ha}
        out = np.clip(u.numpy().astype(np.float64), self.lo64, self.hi64)
        return out[0] if single else out

    @torch.no_grad()
    def predict(self, q: np.ndarray, dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Readings expected `delay` periods from now, given the readings q, dq (N, nj) just
        taken and the commands already sent (a Smith predictor: a policy fed these acts on
        the state its command will meet). Returns (q, dq), (N, nj) each."""
        q_t, dq_t = self._rows(q), self._rows(dq)
        if not self.hist or not self.delay:
            return q_t.numpy().astype(np.float64), dq_t.numpy().astype(np.float64)
        shift = lambda x, new: torch.cat([x[:, 1:], new[:, None]], 1)  # noqa: E731
        hq, hdq = shift(self.hist["q"], q_t), shift(self.hist["dq"], dq_t)
        hu = shift(self.hist["u"], self.hist["u"][:, -1])  # hold the last command
        for _ in range(self.delay):
            q_t, dq_t = self.model(hq, hdq, hu)
            hq, hdq, hu = shift(hq, q_t), shift(hdq, dq_t), shift(hu, hu[:, -1])
        return q_t.numpy().astype(np.float64), dq_t.numpy().astype(np.float64)

    @torch.no_grad()
    def estimate_delay(self, q: np.ndarray, dq: np.ndarray) -> int:
        """Control periods before a command shows in the model's predictions (0-3): the
        first period in which the predicted position moves by 30 % of the most it moves in
        one period in response to a change of the command."""
        q_t, dq_t = self._rows(q), self._rows(dq)
        hq, hdq = q_t[:, None].expand(-1, self.h, -1), dq_t[:, None].expand(-1, self.h, -1)
        hu = hq.clone()
        base = self._rollout(self.model, hq, hdq, hu)
        poke = hu.clone()
        poke[:, -1] += 0.5 * self.scale
        resp = (self._rollout(self.model, hq, hdq, poke) - base).mean(0)  # (K, nj)
        moved = torch.diff(resp, dim=0, prepend=torch.zeros_like(resp[:1])).abs().mean(1)
        return int(torch.nonzero(moved >= 0.3 * moved.max())[0, 0].clamp(max=3))

    def _future(self, a: torch.Tensor, a_prev: torch.Tensor) -> torch.Tensor:
        """Desired targets of the next `horizon` periods, (N, K, nj): held, or extrapolated
        with the last change when `extrapolate` (the robot acts on today's command late)."""
        k = torch.arange(1, self.cfg.horizon + 1, dtype=torch.float32)[None, :, None]
        return a[:, None] + self.cfg.extrapolate * k * (a - a_prev)[:, None]

    def _residual(self, hq, hdq, hu, u, q_ref) -> torch.Tensor:
        hu = torch.cat([hu[:, :-1], u[:, None]], 1)
        return (self._rollout(self.model, hq, hdq, hu) - q_ref) / self.scale

    def _rollout(self, model, hq, hdq, hu, future=None) -> torch.Tensor:
        """q over `horizon` periods, (N, K, nj): the last command of hu held, or followed by
        `future` (N, K, nj) commands."""
        out = []
        for k in range(self.cfg.horizon):
            q1, dq1 = model(hq, hdq, hu)
            out.append(q1)
            if k + 1 < self.cfg.horizon:
                nxt = hu[:, -1:] if future is None else future[:, k : k + 1]
                hq = torch.cat([hq[:, 1:], q1[:, None]], 1)
                hdq = torch.cat([hdq[:, 1:], dq1[:, None]], 1)
                hu = torch.cat([hu[:, 1:], nxt], 1)
        return torch.stack(out, 1)

    def _rows(self, x: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        t = t[None] if t.ndim == 1 else t
        if t.ndim != 2 or t.shape[1] != self.nj or not torch.isfinite(t).all():
            raise ValueError(f"input has shape {tuple(t.shape)}, expected finite (N, {self.nj})")
        return t


def load_adapter(model_path, reference_path=None, cfg: AdaptConfig | None = None, *,
                 joint_names=None, limits=None) -> ActionAdapter:  # fmt: skip
    """An `ActionAdapter` from model files written by `xembody dynamics fit` (the robot's
    model, and optionally the nominal reference). `joint_names`: the order the caller's
    readings and targets come in; both models must cover exactly these joints, in order."""
    from xembody.models.dynamics import load

    model, _ = load(model_path)
    reference = load(reference_path)[0] if reference_path else None
    for path, m in ((model_path, model), (reference_path, reference)):
        if m is not None and joint_names is not None and tuple(m.joint_names) != tuple(joint_names):
            raise ValueError(
                f"dynamics model {path}: joints {list(m.joint_names)}, expected "
                f"{list(joint_names)} (the policy's body, in its order)"
            )
    return ActionAdapter(model, reference, cfg, limits=limits)
