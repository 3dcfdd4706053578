"""One policy for many bodies: imitation-learned base, residual specialists, distillation.

The pieces, in the order the pipeline (`xembody generalist`) uses them:

- `BodyBinding`: what the joint-token student needs to know about one body on one task
  (where the per-joint and body-level terms sit in the task's observation, the joint and
  body descriptors). `BoundStudent` is the student tied to one body: obs (B, obs_dim) ->
  actions (B, num_actions), exportable like any policy, so it can be a residual base.
- `record_demos`: a scripted teacher drives N envs of one body; (obs, action) frames go to
  the project's zarr dataset, one episode per env episode.
- `fit`: supervised training of the student on mixed-body batches (padded and masked):
  behaviour cloning from datasets, and the update step of DAgger.
- `dagger`: student-teacher distillation over mixed-body rollouts; each env's teacher is
  its body's specialist; the student acts (after the first iteration), the teachers label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xembody.models.dataset import Dataset, Feature
from xembody.models.dataset_meta import write_meta
from xembody.models.export import obs_layout
from xembody.models.joint_policy import (
    JointTokenPolicy,
    ObsSplit,
    body_descriptor,
    joint_descriptors,
)
from xembody.sim.env import BodyEnv

Policy = Callable[[object], torch.Tensor]
# The previous action is left out of the student's inputs: with it, cloning a smooth
# teacher learns to repeat the last action (the copycat shortcut) instead of the task.
EXCLUDED_TERMS = ("last_action",)
# Body-level actions (tasks whose `action_mapping` is "body_twist") are read from the
# body token in these canonical units; a body uses the ones its task names (a
# differential base: vx and wz; an omnidirectional one: all three).
BODY_TWIST = ("vx", "vy", "wz")


@dataclass
class BodyBinding:
    """One body on one task, as the student sees it."""

    name: str
    obs_dim: int
    num_actions: int
    joint_index: torch.Tensor  # (J, C) long: obs entry of channel c of joint j
    global_index: torch.Tensor  # (G,) long
    joint_desc: torch.Tensor  # (J, JOINT_DESC_DIM)
    body_desc: torch.Tensor  # (BODY_DESC_DIM,)
    # Body-level actions: their places in BODY_TWIST; None: one action per joint.
    body_action_index: torch.Tensor | None = None
    joint_channels: tuple[str, ...] = ()  # names of the per-joint terms, channel order
    action_scale: float = 1.0  # the task's action units: rad of target per unit

    @classmethod
    def from_env(
        cls,
        env: BodyEnv,
        exclude: Sequence[str] = EXCLUDED_TERMS,
        *,
        root_frame: bool = False,
        subtree: bool = False,
    ) -> BodyBinding:
        """The binding of env's body; observation terms named in `exclude` are left out of
        the student's inputs; `root_frame`: the joint descriptors also hold each joint's
        place on the body, `subtree` what it moves (`joint_descriptors`)."""
        task = env.task
        names = task.joint_names
        body_index = None
        if getattr(task, "action_mapping", "") == "body_twist":
            unknown = [a for a in task.action_names if a not in BODY_TWIST]
            if unknown:
                raise ValueError(f"body actions {unknown} of task {task.name!r}: expected "
                                 f"names from {BODY_TWIST}")  # fmt: skip
            body_index = torch.tensor([BODY_TWIST.index(a) for a in task.action_names])
        elif task.num_actions != len(names):
            raise ValueError(
                f"task {task.name!r} has {task.num_actions} actions for {len(names)} joints; "
                "the joint-token student needs one action per joint"
            )
        split = ObsSplit.from_layout(
            obs_layout(env), len(names), exclude, require_joint_terms=body_index is None
        )
        joint_index = torch.stack(
            [torch.arange(s.start, s.stop) for s in split.joint_slices], dim=1
        ) if split.joint_slices else torch.zeros(len(names), 0, dtype=torch.long)  # fmt: skip
        global_index = torch.cat([torch.arange(s.start, s.stop) for s in split.global_slices])
        model = env.sim.model
        return cls(
            name=task.emb.name,
            obs_dim=int(env.get_observations()["policy"].shape[1]),
            num_actions=task.num_actions,
            joint_index=joint_index,
            global_index=global_index,
            joint_desc=torch.from_numpy(
                joint_descriptors(model, names, root_frame=root_frame, subtree=subtree)
            ),
            body_desc=torch.from_numpy(body_descriptor(model, len(names), task.emb.floating_base)),
            body_action_index=body_index,
            joint_channels=split.joint_names,
            action_scale=float(task.cfg.action_scale),
        )

    @property
    def num_joints(self) -> int:
        return int(self.joint_index.shape[0])

    def targets(self, actions: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The body's actions (B, num_actions) placed where the student outputs them:
        per joint, zero-padded to `width` joints, or in BODY_TWIST; and the mask of the
        places that hold an action."""
        if self.body_action_index is None:
            mask = torch.ones(actions.shape[0], self.num_joints, dtype=torch.bool)
            return _pad(actions, width), _pad(mask, width)
        out = actions.new_zeros(actions.shape[0], len(BODY_TWIST))
        out[:, self.body_action_index] = actions
        mask = torch.zeros_like(out, dtype=torch.bool)
        mask[:, self.body_action_index] = True
        return out, mask

    def inputs(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, obs_dim) -> joint_obs (B, J, C), joint_desc, global_obs, body_desc."""
        b = obs.shape[0]
        return (
            obs[:, self.joint_index],
            self.joint_desc.expand(b, -1, -1),
            obs[:, self.global_index],
            self.body_desc.expand(b, -1),
        )


class BoundStudent(nn.Module):
    """The student tied to one body: obs (B, obs_dim) -> actions (B, num_joints)."""

    def __init__(self, student: JointTokenPolicy, binding: BodyBinding) -> None:
        super().__init__()
        self.student = student
        self.register_buffer("joint_index", binding.joint_index.clone())
        self.register_buffer("global_index", binding.global_index.clone())
        self.register_buffer("joint_desc", binding.joint_desc.clone())
        self.register_buffer("body_desc", binding.body_desc.clone())
        self.body_actions = binding.body_action_index is not None
        index = binding.body_action_index if self.body_actions else torch.zeros(0)
        self.register_buffer("body_action_index", index.long().clone())
        self.is_recurrent = False
        self.onnx_via_torchscript = True  # torch.export would fix the batch size (export.py)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        b = obs.shape[0]
        mask = torch.ones(b, self.joint_index.shape[0], dtype=torch.bool, device=obs.device)
        joint_actions, body_actions = self.student(
            obs[:, self.joint_index],
            self.joint_desc.expand(b, -1, -1),
            mask,
            obs[:, self.global_index],
            self.body_desc.expand(b, -1),
        )
        return body_actions[:, self.body_action_index] if self.body_actions else joint_actions

    # export.py asks a model for its inference modules
    def as_jit(self) -> nn.Module:
        return self

    def as_onnx(self, verbose: bool = False) -> nn.Module:
        return self


def make_student(binding: BodyBinding, *, relative_to: str = "", **kwargs) -> JointTokenPolicy:
    """A student for the binding's observation layout. `relative_to` names a per-joint
    angle term (e.g. "joint_pos", the offset from the default pose, which is what the
    action adds to): the network then outputs targets relative to it (a fixed skip of
    1 / action_scale), and learns the step to take, not the absolute target."""
    body = len(BODY_TWIST) if binding.body_action_index is not None else 0
    skip = None
    if relative_to:
        if relative_to not in binding.joint_channels:
            raise ValueError(f"relative_to={relative_to!r}: expected one of the per-joint "
                             f"terms {binding.joint_channels}")  # fmt: skip
        skip = [float(c == relative_to) / binding.action_scale for c in binding.joint_channels]
    return JointTokenPolicy(
        int(binding.joint_index.shape[1]),
        int(binding.global_index.shape[0]),
        body_actions=body,
        skip=skip,
        joint_desc_dim=int(binding.joint_desc.shape[1]),
        **kwargs,
    )


# --- demonstrations ---------------------------------------------------------------------
def record_demos(
    env: BodyEnv, teacher: Policy, path: Path, episodes: int, *, action_noise: float = 0.0
) -> Dataset:
    """Roll `teacher` on `env` until `episodes` episodes ended; store each env's episode
    (policy observation, teacher action, reward) in a zarr dataset at `path`. With
    `action_noise`, the env executes the teacher's action plus Gaussian noise of that
    standard deviation while the clean action is recorded (noise injection: the demos then
    show how to recover from the states a cloned policy's own errors lead to)."""
    obs_dim = int(env.get_observations()["policy"].shape[1])
    ds = Dataset.create(
        path,
        {
            "obs": Feature((obs_dim,), "float32"),
            "action": Feature((env.num_actions,), "float32"),
            "reward": Feature((1,), "float32"),
        },
        fps=env.task.cfg.control_hz,
        meta=write_meta(
            env.task.emb,
            obs_layout=obs_layout(env),
            task=env.task.name,
            source="scripted teacher " + type(teacher).__name__,
        ),
        overwrite=True,
    )
    n = env.num_envs
    buffers: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(n)]
    obs = env.reset()
    done_count = 0
    with torch.inference_mode():
        while done_count < episodes:
            action = teacher(obs)
            executed = action + action_noise * torch.randn_like(action) if action_noise else action
            nxt, reward, dones, extras = env.step(executed)
            o, a, r = obs["policy"].numpy(), action.numpy(), reward.numpy()
            for i in range(n):
                buffers[i].append((o[i], a[i], float(r[i])))
            finished = extras.get("finished")
            if finished is not None:
                for k, i in enumerate(finished["env_ids"].tolist()):
                    if done_count < episodes:
                        for fo, fa, fr in buffers[i]:
                            ds.add_frame({"obs": fo, "action": fa, "reward": np.array([fr])})
                        ds.save_episode(success=bool(finished["success"][k]))
                        done_count += 1
                    buffers[i] = []
            obs = nxt
    return ds


# --- supervised fitting on mixed-body batches ------------------------------------------
@dataclass
class BodyData:
    binding: BodyBinding
    obs: torch.Tensor  # (T, obs_dim)
    actions: torch.Tensor  # (T, num_actions), the teacher's


def fit(
    student: JointTokenPolicy,
    data: Sequence[BodyData],
    *,
    epochs: int,
    batch_per_body: int = 256,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    desc_noise: float = 0.0,
    log: Callable[[str], None] = print,
) -> float:
    """Minimise the masked squared error between the student's and the teacher's actions;
    each minibatch holds `batch_per_body` samples of every body. `desc_noise`: each
    sample's descriptors are shifted by Gaussian noise of that fraction of each entry's
    spread over the bodies in `data` (entries that do not vary get none; one shift for
    all joints of a sample, one for its body descriptor), so the student cannot key its
    actions to one training body's exact descriptors. Returns the last loss."""
    opt = optimizer or torch.optim.Adam(student.parameters(), lr=lr)
    jmax = max(d.binding.num_joints for d in data)
    if desc_noise:  # one body: its body descriptor does not vary (std of one row is nan)
        joint_spread = desc_noise * torch.cat([d.binding.joint_desc for d in data]).std(0)
        body_rows = torch.stack([d.binding.body_desc for d in data])
        body_spread = desc_noise * (body_rows.std(0) if len(data) > 1 else 0 * body_rows[0])
    steps = max(1, max(len(d.obs) for d in data) // batch_per_body)
    loss_value = float("nan")
    student.train()
    for epoch in range(epochs):
        total = 0.0
        for _ in range(steps):
            parts = [_sample(d, batch_per_body, jmax) for d in data]
            joint_obs, joint_desc, mask, glob, body, target, target_mask = (
                torch.cat([p[k] for p in parts]) for k in range(7)
            )
            if desc_noise:
                # one offset per sample for all its joints: a slightly different body
                # (per joint, attention would average the noise away)
                shift = torch.randn(len(joint_desc), 1, joint_desc.shape[-1])
                joint_desc = joint_desc + joint_spread * shift
                body = body + body_spread * torch.randn_like(body)
            joint_pred, body_pred = student(joint_obs, joint_desc, mask, glob, body)
            pred = body_pred if student.body_actions else joint_pred
            loss = ((pred - target).square() * target_mask).sum() / target_mask.sum()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            total += loss.item()
        loss_value = total / steps
        if epoch == epochs - 1 or epoch % max(1, epochs // 5) == 0:
            log(f"  fit epoch {epoch + 1}/{epochs}: action mse {loss_value:.4f}")
    student.eval()
    return loss_value


def _sample(d: BodyData, batch: int, jmax: int) -> tuple[torch.Tensor, ...]:
    idx = torch.randint(len(d.obs), (batch,))
    joint_obs, joint_desc, glob, body = d.binding.inputs(d.obs[idx])
    mask = torch.ones(batch, d.binding.num_joints, dtype=torch.bool)
    padded = (_pad(x, jmax) for x in (joint_obs, joint_desc, mask))
    return (*padded, glob, body, *d.binding.targets(d.actions[idx], jmax))


def _pad(x: torch.Tensor, jmax: int) -> torch.Tensor:
    """Zero-pad the joint dimension (dim 1) of x to jmax."""
    extra = jmax - x.shape[1]
    return nn.functional.pad(x, (0, 0, 0, extra) if x.dim() == 3 else (0, extra))


def load_demos(path: Path, binding: BodyBinding) -> BodyData:
    ds = Dataset.open(path)
    obs = torch.from_numpy(ds.read("obs"))
    if obs.shape[1] != binding.obs_dim:
        raise ValueError(
            f"{path}: observations have {obs.shape[1]} entries, body {binding.name} has "
            f"{binding.obs_dim}"
        )
    return BodyData(binding, obs, torch.from_numpy(ds.read("action")))


# --- DAgger -----------------------------------------------------------------------------
def dagger(
    student: JointTokenPolicy,
    envs: Sequence[BodyEnv],
    teachers: Sequence[Policy],
    *,
    iterations: int,
    steps: int = 100,
    epochs: int = 4,
    keep: int = 50_000,
    lr: float = 5e-4,
    exclude: Sequence[str] = EXCLUDED_TERMS,
    normalize: bool = False,
    bindings: Sequence[BodyBinding] | None = None,
    action_noise: float = 0.0,
    desc_noise: float = 0.0,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Distil `teachers` (one per env, each on its own body) into `student`. Iteration 0
    rolls the teachers; later ones roll the student; every visited observation is labelled
    by its body's teacher and kept (the newest `keep` per body). `exclude`: observation
    terms the student does not see; `normalize`: set the student's input normalisation
    from the teachers' rollouts of iteration 0; `bindings`: the envs' bindings where the
    caller has them (else built with `exclude`); `action_noise`: the envs execute the
    acting policy's action plus Gaussian noise of that standard deviation (action units)
    while the teacher's clean label is kept, so the data also show how to recover from
    the states that errors lead to; `desc_noise`: passed to `fit`. Returns the losses."""
    if bindings is None:
        bindings = [BodyBinding.from_env(e, exclude) for e in envs]
    bound = [BoundStudent(student, b) for b in bindings]
    data = [BodyData(b, torch.zeros(0, b.obs_dim), torch.zeros(0, b.num_actions)) for b in bindings]
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    obs = [e.get_observations() for e in envs]
    losses = []
    for it in range(iterations):
        t0 = time.perf_counter()
        for k, (env, teacher) in enumerate(zip(envs, teachers, strict=True)):
            actor = None if it == 0 else (lambda o, s=bound[k]: s(o["policy"]))
            obs[k], seen, labels = rollout(env, obs[k], teacher, actor, steps, action_noise)
            d = data[k]
            d.obs = torch.cat([d.obs, seen])[-keep:]
            d.actions = torch.cat([d.actions, labels])[-keep:]
        if normalize and it == 0:
            inputs = [d.binding.inputs(d.obs) for d in data]
            student.fit_normalization(
                torch.cat([x[0].flatten(0, 1) for x in inputs]), torch.cat([x[2] for x in inputs])
            )
        losses.append(fit(student, data, epochs=epochs, optimizer=opt, desc_noise=desc_noise,
                          log=lambda _: None))  # fmt: skip
        log(
            f"dagger {it + 1}/{iterations}: action mse {losses[-1]:.4f}, "
            f"{sum(len(d.obs) for d in data)} samples, {time.perf_counter() - t0:.0f} s"
        )
    return losses


def rollout(
    env: BodyEnv,
    obs: dict,
    teacher: Policy,
    actor: Policy | None,
    steps: int,
    action_noise: float = 0.0,
) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """`steps` steps of `env` from `obs`, driven by `actor` (None: the teacher) plus
    Gaussian noise of `action_noise`; every visited policy observation is labelled with
    the teacher's clean action. Returns the last observation, the observations (steps x
    num_envs, obs_dim) and the labels (steps x num_envs, num_actions)."""
    seen, labels = [], []
    for _ in range(steps):
        with torch.inference_mode():
            label = teacher(obs)
            act = label if actor is None else actor(obs)
        seen.append(obs["policy"].clone())
        labels.append(label.clone())
        if action_noise:
            act = act + action_noise * torch.randn_like(act)
        obs, _, _, _ = env.step(act)
    return obs, torch.cat(seen), torch.cat(labels)
