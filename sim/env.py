"""The vector env: one task on one body, N envs, rsl-rl's VecEnv contract.

`step(actions)`:
1. actions (N, num_actions) are clipped to +-action_clip and delayed by each env's
   latency (drawn per episode, in control steps), then mapped to actuator targets by
   the task;
2. the physics advances one control period (`decimation` substeps);
3. the task updates its state, then rewards (sum of weighted terms x control period),
   terminations (task failure or diverged physics) and time-outs are computed;
4. finished envs are reset (new commands, randomised physics) before observations.

Observations: group "policy" is the concatenation of the task's `ObsTerm`s in order, each
with its declared noise (scaled by randomization.obs_noise); group "critic" is the same
without noise, followed by the task's privileged `critic_terms()` (true base velocity, foot
contacts: what a robot cannot measure but the critic may use in training). The reward
weights are the task's defaults overridden by its config's `rewards` (`reward_weights`
holds the resolved ones; run.json saves them).

`extras["time_outs"]` marks truncations; `extras["log"]` holds the mean per-term reward
sums, lengths and success of the episodes that ended this step (and the task's
`episode_log()`: curriculum state), and `extras["finished"]`
one record per ended episode (env id, success, terminated, length in steps,
return, and the episode mean of each of the task's `metrics()`), which eval reads.

Device: the env, its task and every tensor they return live on the sim's device
(`env.device == env.sim.device`: the CPU, or CUDA for MuJoCo Warp on a GPU), so a step on
a GPU never copies state to the host. Random draws on the per-step and per-reset path come
from torch generators on that device, seeded from `seed` (a seed gives the same episodes
on the same device; CPU and CUDA draw different numbers).

Host syncs per step on CUDA: two. The sim's `step` reads back its health flags once (Warp
backend), and the env reads back one small mask (`dones`, the envs due for a push, and
whether the actions were finite) from which it takes the index lists of the envs to push
and to reset; resets, pushes and randomisation then run on device index tensors without
further reads. (Before: a finite-actions check, a push list, a done list, and several
per reset or push inside the backend.) On CUDA a non-finite action therefore raises after
the physics step that used it; on the CPU it raises before, as syncs cost nothing there.
Pushes (a velocity kick through `sim.reset` of the pushed envs' own state) land after the
step's rewards and terminations, before resets and observations.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from xembody.sim.physics import make_sim
from xembody.sim.tasks.base import RewardTerm, Task


class BodyEnv(VecEnv):
    def __init__(
        self,
        task: Task,
        num_envs: int,
        *,
        seed: int = 0,
        backend: str = "cpu",
        num_threads: int | None = None,
    ):
        self.task = task
        self.cfg = task.cfg
        self.num_envs = num_envs
        model = task.build_model()
        self.sim = make_sim(model, num_envs, backend, num_threads=num_threads)
        self.device = dev = self.sim.device
        self.control_dt = 1.0 / self.cfg.control_hz
        self.decimation = round(self.control_dt / model.opt.timestep)
        if abs(self.decimation * model.opt.timestep - self.control_dt) > 1e-9:
            raise ValueError(
                f"control_hz={self.cfg.control_hz}: the period is not a multiple of the "
                f"physics timestep {model.opt.timestep}"
            )
        self.max_episode_length = round(self.cfg.episode_seconds / self.control_dt)
        # numpy: the tasks' host-side samplers (rejection-sampled layouts and targets);
        # torch, on the sim's device: everything drawn per step or per reset here.
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(dev).manual_seed(seed)
        torch.manual_seed(seed)
        task.bind(self.sim, self.rng)
        self.num_actions = task.num_actions
        self.obs_terms = task.obs_terms()
        self.critic_terms = task.critic_terms()
        self.reward_terms, self.reward_weights = _weighted(task.reward_terms(), task.cfg.rewards)

        n, r = num_envs, self.cfg.randomization
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=dev)
        self.episode_sums = {t.name: torch.zeros(n, device=dev) for t in self.reward_terms}
        self.episode_success = torch.zeros(n, dtype=torch.bool, device=dev)
        self.episode_return = torch.zeros(n, device=dev)
        self.episode_metrics: dict[str, torch.Tensor] = {}
        self.latency = torch.zeros(n, dtype=torch.long, device=dev)
        self.action_history = torch.zeros(n, r.action_latency[1] + 1, self.num_actions, device=dev)
        self.push_timer = torch.zeros(n, device=dev)
        self._all_envs = torch.arange(n, device=dev)
        self._nominal = {
            name: self.sim.get_params(name).clone()
            for name in ("geom_friction", "body_mass", "actuator_kp", "actuator_kd")
        }
        self.reset()

    # --- VecEnv -------------------------------------------------------------------------
    def get_observations(self) -> TensorDict:
        clean = [t.fn(self.task) for t in self.obs_terms]
        noise_scale = self.cfg.randomization.obs_noise
        noisy = [
            x + t.noise * noise_scale * self._randn(x) if t.noise and noise_scale else x
            for t, x in zip(self.obs_terms, clean, strict=True)
        ]
        privileged = [t.fn(self.task) for t in self.critic_terms]
        return TensorDict(
            {"policy": torch.cat(noisy, 1), "critic": torch.cat(clean + privileged, 1)},
            batch_size=[self.num_envs],
        )

    def step(self, actions: torch.Tensor):
        task = self.task
        actions = actions.detach().to(self.device, torch.float32)
        finite = torch.isfinite(actions).all()
        if self.device.type == "cpu" and not finite:  # free on the CPU: raise before stepping
            raise ValueError("actions contain NaN or inf")
        actions = actions.clamp(-self.cfg.action_clip, self.cfg.action_clip)
        self.action_history = torch.roll(self.action_history, 1, dims=1)
        self.action_history[:, 0] = actions
        delayed = self.action_history[self._all_envs, self.latency]
        task.last_actions = task.actions
        task.actions = actions
        task.apply_actions(delayed)
        self.sim.step(self.decimation)
        self.episode_length_buf += 1
        task.post_step()
        push_due = self._push_due()

        rewards = torch.zeros(self.num_envs, device=self.device)
        for term in self.reward_terms:
            value = term.fn(task) * term.weight * self.control_dt
            self.episode_sums[term.name] += value
            rewards += value
        self.episode_return += rewards
        for name, value in task.metrics().items():
            total = self.episode_metrics.setdefault(
                name, torch.zeros(self.num_envs, device=self.device)
            )
            total += value.float()
        self.episode_success |= task.success()
        terminated = task.terminated() | self.sim.diverged
        time_outs = self.episode_length_buf >= self.max_episode_length
        dones = terminated | time_outs
        extras = {"time_outs": time_outs, "log": {}}
        done_ids, push_ids = self._index_lists(dones, push_due, finite)
        if len(push_ids):
            self._push(push_ids)
        if len(done_ids):
            extras["log"] = self._episode_log(done_ids)
            extras["finished"] = self._finished(done_ids, terminated)
            self._reset_envs(done_ids)
        return self.get_observations(), rewards, dones.long(), extras

    # --- resets and randomisation -------------------------------------------------------
    def reset(self) -> TensorDict:
        self._reset_envs(self._all_envs)
        return self.get_observations()

    def _reset_envs(self, ids: torch.Tensor) -> None:
        self._randomize(ids)
        self.task.reset_envs(ids)
        self.episode_length_buf[ids] = 0
        for s in self.episode_sums.values():
            s[ids] = 0.0
        self.episode_success[ids] = False
        self.episode_return[ids] = 0.0
        for m in self.episode_metrics.values():
            m[ids] = 0.0
        self.action_history[ids] = 0.0
        self.task.actions[ids] = 0.0
        self.task.last_actions[ids] = 0.0
        lo, hi = self.cfg.randomization.action_latency
        if hi > lo:
            self.latency[ids] = torch.randint(
                lo, hi + 1, (len(ids),), generator=self.generator, device=self.device
            )
        else:
            self.latency[ids] = lo
        self.push_timer[ids] = self._next_push(len(ids))

    def _uniform(self, lo: float, hi: float, *shape: int, dtype=torch.float32) -> torch.Tensor:
        """Uniform draws in [lo, hi) on the env's device, from the env's generator (drawn
        in float32 whatever `dtype`: backends of either precision get the same numbers)."""
        u = torch.rand(shape, generator=self.generator, device=self.device)
        return lo + (hi - lo) * u.to(dtype)

    def _randn(self, like: torch.Tensor) -> torch.Tensor:
        u = torch.randn(like.shape, generator=self.generator, device=like.device)
        return u.to(like.dtype)

    def _randomize(self, ids: torch.Tensor) -> None:
        r, n = self.cfg.randomization, len(ids)
        dtype = self._nominal["body_mass"].dtype
        u = lambda bounds: self._uniform(*bounds, n, 1, dtype=dtype)  # noqa: E731
        if r.friction != (1, 1):
            friction = self._nominal["geom_friction"][ids].clone()
            friction[:, :, 0] *= u(r.friction)
            self.sim.set_params("geom_friction", friction, ids)
        if r.mass != (1, 1):
            self.sim.set_params("body_mass", self._nominal["body_mass"][ids] * u(r.mass), ids)
        if r.motor_strength != (1, 1):
            scale = u(r.motor_strength)
            self.sim.set_params("actuator_kp", self._nominal["actuator_kp"][ids] * scale, ids)
            self.sim.set_params("actuator_kd", self._nominal["actuator_kd"][ids] * scale, ids)

    def _next_push(self, n: int) -> torch.Tensor:
        interval = self.cfg.randomization.push_interval_s
        if interval <= 0:
            return torch.full((n,), float("inf"), device=self.device)
        return self._uniform(0.5, 1.5, n) * interval

    def _push_due(self) -> torch.Tensor | None:
        """(N,) bool: the envs whose push timer ran out this step (None: no pushes)."""
        if self.cfg.randomization.push_interval_s <= 0 or not self.task.emb.floating_base:
            return None
        self.push_timer -= self.control_dt
        return self.push_timer <= 0

    def _index_lists(self, dones, push_due, finite) -> tuple[torch.Tensor, torch.Tensor]:
        """Device index tensors of the envs to reset and to push, from the step's one host
        read; raises there when the actions were not finite (CUDA)."""
        n, dev = self.num_envs, self.device
        flags = [dones] + ([push_due] if push_due is not None else []) + [~finite[None]]
        hits = torch.cat(flags).cpu().nonzero().flatten()  # the one sync of the env's step
        if len(hits) and int(hits[-1]) == n * (len(flags) - 1):
            raise ValueError("actions contain NaN or inf")
        done_ids, push_ids = hits[hits < n], hits[(hits >= n) & (hits < 2 * n)] - n
        if dev.type == "cuda":  # pinned, non-blocking: no wait for the queued kernels
            return tuple(x.pin_memory().to(dev, non_blocking=True) for x in (done_ids, push_ids))
        return done_ids.to(dev), push_ids.to(dev)

    def _push(self, ids: torch.Tensor) -> None:
        """A horizontal velocity kick of the bases of envs `ids` (a reset of their own state)."""
        qvel = self.sim.qvel[ids].clone()
        v = self.cfg.randomization.push_velocity
        qvel[:, :2] += self._uniform(-v, v, len(ids), 2, dtype=qvel.dtype)
        qpos = self.sim.qpos[ids].clone()
        mocap = self.sim.mocap_pos[ids].clone() if self.sim.model.nmocap else None
        self.sim.reset(ids, qpos=qpos, qvel=qvel, mocap_pos=mocap)
        self.push_timer[ids] = self._next_push(len(ids))

    def _episode_log(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Means over the episodes `ids` as 0-d tensors on the env's device (rsl-rl's logger
        takes them as they are: no host sync here)."""
        log = {
            f"/reward/{k}": v[ids].mean() / self.cfg.episode_seconds
            for k, v in self.episode_sums.items()
        }
        log["/episode/length_s"] = self.episode_length_buf[ids].float().mean() * self.control_dt
        log["/episode/success"] = self.episode_success[ids].float().mean()
        return log | self.task.episode_log()

    def _finished(self, ids: torch.Tensor, terminated: torch.Tensor) -> dict[str, torch.Tensor]:
        steps = self.episode_length_buf[ids].clamp_min(1)
        out = {
            "env_ids": ids.clone(),
            "success": self.episode_success[ids].clone(),
            "terminated": terminated[ids].clone(),
            "length": self.episode_length_buf[ids].clone(),
            "return": self.episode_return[ids].clone(),
        }
        for name, total in self.episode_metrics.items():
            out[name] = total[ids] / steps
        return out

    def close(self) -> None:
        self.sim.close()


def _weighted(terms: list[RewardTerm], weights: dict[str, float]) -> tuple[list, dict]:
    """The task's reward terms with `weights` (the config's `rewards`) replacing their
    default weights; a weight of 0 drops the term. Returns the terms and every weight."""
    defaults = {t.name: t.weight for t in terms}
    unknown = sorted(set(weights) - set(defaults))
    if unknown:
        raise ValueError(
            f"rewards: unknown term(s) {unknown}; this task's terms are {sorted(defaults)}"
        )
    resolved = defaults | {k: float(v) for k, v in weights.items()}
    kept = [dataclasses.replace(t, weight=resolved[t.name]) for t in terms]
    return [t for t in kept if t.weight != 0], resolved
