"""A policy that sees every body through one interface: one token per joint.

Each joint becomes a token built from its own observations (angle, velocity, last action:
the task's per-joint terms) and a descriptor of the joint (axis, limits, offset from its
parent, actuator gains, effort limit, rotor inertia). One more token carries the task's
body-level observations (targets, errors, a goal) and a descriptor of the body. A small
transformer attends over the tokens; a shared head reads one action per joint from each
joint token, and an optional body head reads body-level actions (a base twist) from the
body token. Bodies with different joint counts share a batch by padding to the largest
count with a mask: padded tokens are excluded from attention, and their outputs are zero,
so they cannot change a real joint's action. A new body needs no new weights.

Shapes: B batch, J joints (padded), C per-joint observation channels, G body-level
observations; descriptors have JOINT_DESC_DIM and BODY_DESC_DIM entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np
import torch
from torch import nn

JOINT_DESC_DIM = 13  # axis 3, range lo/hi 2, parent offset 3, log kp, log kd, log effort,
# log armature, range width
ROOT_FRAME_DIM = 3  # with root_frame: the joint's anchor in the root body's frame
SUBTREE_DIM = 4  # with subtree: what the joint moves, its centre of mass from the anchor
# (root body's frame) and log mass
BODY_DESC_DIM = 4  # log total mass, joint count / 10, log mean link length, floating base


def joint_descriptors(
    model: mujoco.MjModel,
    joint_names: Sequence[str],
    *,
    root_frame: bool = False,
    subtree: bool = False,
) -> np.ndarray:
    """(J, JOINT_DESC_DIM) float32 descriptors of the named hinge/slide joints; with
    `root_frame`, (J, JOINT_DESC_DIM + ROOT_FRAME_DIM): each joint's anchor in its root
    body's frame at the reference pose (qpos0) is appended. The parent offset alone does
    not tell a quadruped's four knees apart, nor a front hip from a rear one (their
    descriptors are identical); the anchor's place on the body does. With `subtree`,
    SUBTREE_DIM more: what the joint moves (its body and every body below it), as the
    centre of mass of those bodies from the anchor in the root body's frame and the log of
    their mass. A descriptor otherwise never sees the last link of a chain: a quadruped's
    shank (knee to foot) appears only here."""
    out = np.zeros((len(joint_names), JOINT_DESC_DIM), np.float32)
    for i, name in enumerate(joint_names):
        j = model.joint(name)
        jid = j.id
        act = [a for a in range(model.nu) if model.actuator_trnid[a, 0] == jid]
        kp = float(model.actuator_gainprm[act[0], 0]) if act else 0.0
        kd = float(-model.actuator_biasprm[act[0], 2]) if act else 0.0
        effort = float(model.actuator_forcerange[act[0], 1]) if act else 0.0
        lo, hi = model.jnt_range[jid] if model.jnt_limited[jid] else (-np.pi, np.pi)
        dof = model.jnt_dofadr[jid]
        out[i] = [
            *model.jnt_axis[jid],
            lo,
            hi,
            *model.body_pos[model.jnt_bodyid[jid]],
            np.log1p(abs(kp)),
            np.log1p(abs(kd)),
            np.log1p(abs(effort)),
            np.log1p(1e3 * model.dof_armature[dof]),
            hi - lo,
        ]
    if root_frame or subtree:
        anchors, subtrees = _placement(model, joint_names)
        parts = [out, *([anchors] if root_frame else []), *([subtrees] if subtree else [])]
        out = np.concatenate(parts, axis=1)
    return out


def _placement(model: mujoco.MjModel, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per joint at qpos0, in its root body's frame: the anchor (J, ROOT_FRAME_DIM) from the
    root body's origin, and (J, SUBTREE_DIM) the centre of mass of what the joint moves from
    the anchor, with the log of that mass."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)  # subtree_com
    anchors = np.zeros((len(joint_names), ROOT_FRAME_DIM), np.float32)
    subtrees = np.zeros((len(joint_names), SUBTREE_DIM), np.float32)
    for i, name in enumerate(joint_names):
        jid = model.joint(name).id
        body = model.jnt_bodyid[jid]
        root = model.body_rootid[body]
        rot_t = data.xmat[root].reshape(3, 3).T
        anchors[i] = rot_t @ (data.xanchor[jid] - data.xpos[root])
        subtrees[i, :3] = rot_t @ (data.subtree_com[body] - data.xanchor[jid])
        subtrees[i, 3] = np.log1p(float(model.body_subtreemass[body]))
    return anchors, subtrees


def body_descriptor(model: mujoco.MjModel, num_joints: int, floating: bool) -> np.ndarray:
    """(BODY_DESC_DIM,) float32 descriptor of a whole body."""
    lengths = np.linalg.norm(model.body_pos[1:], axis=1)
    return np.array(
        [
            np.log1p(float(model.body_mass.sum())),
            num_joints / 10.0,
            np.log(1e-3 + float(lengths.mean()) if len(lengths) else 1e-3),
            float(floating),
        ],
        np.float32,
    )


@dataclass(frozen=True)
class ObsSplit:
    """Where the per-joint and the body-level terms sit in a task's flat observation."""

    joint_slices: tuple[slice, ...]  # each of size J: one channel per term
    global_slices: tuple[slice, ...]
    joint_names: tuple[str, ...] = ()  # the per-joint terms' names, one per channel

    @classmethod
    def from_layout(
        cls,
        terms: Sequence[dict],
        num_joints: int,
        exclude: Sequence[str] = (),
        *,
        require_joint_terms: bool = True,
    ) -> ObsSplit:
        """Terms of frame "joint" or "action" with `num_joints` entries are per-joint;
        terms named in `exclude` are left out. A task whose actions are body-level (a base
        twist) may have no per-joint terms (`require_joint_terms=False`): its joint tokens
        are then made from the joint descriptors alone."""
        joint, glob, names = [], [], []
        for t in terms:
            if t["name"] in exclude:
                continue
            sl = slice(int(t["start"]), int(t["start"]) + int(t["size"]))
            per_joint = t.get("frame") in ("joint", "action") and int(t["size"]) == num_joints
            (joint if per_joint else glob).append(sl)
            if per_joint:
                names.append(t["name"])
        if not joint and require_joint_terms:
            raise ValueError("the observation has no per-joint terms to make joint tokens from")
        return cls(tuple(joint), tuple(glob), tuple(names))

    @property
    def channels(self) -> int:
        return len(self.joint_slices)

    @property
    def global_dim(self) -> int:
        return sum(s.stop - s.start for s in self.global_slices)

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> per-joint (B, J, C) and body-level (B, G)."""
        joint = torch.stack([obs[:, s] for s in self.joint_slices], dim=-1)
        glob = torch.cat([obs[:, s] for s in self.global_slices], dim=-1)
        return joint, glob


class JointTokenPolicy(nn.Module):
    """Per-joint tokens + a body token -> attention -> one action per joint (+ body actions).

    forward(joint_obs (B, J, C), joint_desc (B, J, JOINT_DESC_DIM), mask (B, J) bool (True:
    a real joint), global_obs (B, G), body_desc (B, BODY_DESC_DIM))
    -> joint_actions (B, J) (zero where mask is False), body_actions (B, body_actions).

    `skip` (C,) adds a fixed linear map of each joint's own channels to its action: with
    1 / action_scale on the joint-angle channel, the network outputs targets relative to
    the measured angle instead of absolute ones (a saved buffer; zero: none). Inputs are
    normalised by saved buffers, the identity until `fit_normalization` sets them.
    `global_to_joints`: each joint token is also built from the body-level observations
    (a gait clock, the command), not only reached through attention to the body token.
    `joint_desc_dim`: the descriptors' width (JOINT_DESC_DIM, + ROOT_FRAME_DIM with
    `joint_descriptors(..., root_frame=True)`, + SUBTREE_DIM with `subtree=True`)."""

    def __init__(
        self,
        joint_channels: int,
        global_dim: int,
        *,
        body_actions: int = 0,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        skip: Sequence[float] | None = None,
        global_to_joints: bool = False,
        joint_desc_dim: int = JOINT_DESC_DIM,
    ) -> None:
        super().__init__()
        skip = torch.zeros(joint_channels) if skip is None else torch.tensor(skip).float()
        if skip.shape != (joint_channels,):
            raise ValueError(f"skip has {len(skip)} gains, expected one per channel "
                             f"({joint_channels})")  # fmt: skip
        self.register_buffer("skip", skip)
        # Input normalisation (identity until `fit_normalization`): each per-joint channel
        # over all joints, each body-level entry on its own.
        self.register_buffer("joint_mean", torch.zeros(joint_channels))
        self.register_buffer("joint_std", torch.ones(joint_channels))
        self.register_buffer("global_mean", torch.zeros(global_dim))
        self.register_buffer("global_std", torch.ones(global_dim))
        # Descriptor entries that did not vary over the training bodies (`fit_descriptors`)
        # are pinned to their training value: the network never learned what they mean.
        self.register_buffer("desc_fixed", torch.zeros(joint_desc_dim, dtype=torch.bool))
        self.register_buffer("desc_value", torch.zeros(joint_desc_dim))
        self.joint_channels = joint_channels
        self.global_dim = global_dim
        self.body_actions = body_actions
        self.global_to_joints = global_to_joints
        joint_inputs = joint_channels + joint_desc_dim + global_dim * global_to_joints
        self.joint_in = nn.Sequential(nn.Linear(joint_inputs, dim), nn.ELU(), nn.Linear(dim, dim))
        self.body_in = nn.Sequential(
            nn.Linear(global_dim + BODY_DESC_DIM, dim), nn.ELU(), nn.Linear(dim, dim)
        )
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads) for _ in range(layers))
        self.joint_head = nn.Sequential(nn.Linear(dim, dim), nn.ELU(), nn.Linear(dim, 1))
        self.body_head = nn.Linear(dim, body_actions) if body_actions else None

    def forward(
        self,
        joint_obs: torch.Tensor,
        joint_desc: torch.Tensor,
        mask: torch.Tensor,
        global_obs: torch.Tensor,
        body_desc: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if joint_obs.shape[-1] != self.joint_channels:
            raise ValueError(
                f"joint_obs has {joint_obs.shape[-1]} channels, expected {self.joint_channels}"
            )
        if global_obs.shape[-1] != self.global_dim:
            raise ValueError(f"global_obs has {global_obs.shape[-1]}, expected {self.global_dim}")
        keep = mask.unsqueeze(-1)
        joint_desc = torch.where(self.desc_fixed, self.desc_value, joint_desc)
        joint_in = (joint_obs - self.joint_mean) / self.joint_std
        global_in = (global_obs - self.global_mean) / self.global_std
        # Padded joints' inputs are zeroed too, so garbage there cannot leak anywhere.
        parts = [joint_in, joint_desc]
        if self.global_to_joints:
            parts.append(global_in.unsqueeze(1).expand(-1, joint_in.shape[1], -1))
        tokens = self.joint_in(torch.cat(parts, -1) * keep)
        body = self.body_in(torch.cat([global_in, body_desc], -1)).unsqueeze(1)
        x = torch.cat([body, tokens], dim=1)
        valid = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        for block in self.blocks:
            x = block(x, valid)
        joint_actions = (self.joint_head(x[:, 1:]).squeeze(-1) + joint_obs @ self.skip) * mask
        body_actions = (
            self.body_head(x[:, 0]) if self.body_head is not None else x.new_zeros(len(x), 0)
        )
        return joint_actions, body_actions

    @torch.no_grad()
    def fit_normalization(self, joint_rows: torch.Tensor, global_rows: torch.Tensor) -> None:
        """Set the input normalisation from a sample of inputs: `joint_rows` (N, C), one
        row per real joint of every sample, and `global_rows` (M, G). The network then sees
        each input with zero mean and unit spread (a spread below 0.01 counts as 0.01)."""
        self.joint_mean.copy_(joint_rows.mean(0))
        self.joint_std.copy_(joint_rows.std(0).clamp_min(0.01))
        self.global_mean.copy_(global_rows.mean(0))
        self.global_std.copy_(global_rows.std(0).clamp_min(0.01))

    @torch.no_grad()
    def fit_descriptors(self, rows: torch.Tensor) -> None:
        """Pin the descriptor entries that are the same in every row of `rows` (N, D): one
        row per joint of every training body. A vendor file can differ there (URDF carries
        no armature; every generated body has 0.01) and would show the network a value it
        never saw vary, weighted by whatever the entry's weights became as a constant."""
        fixed = (rows.max(0).values - rows.min(0).values) <= 1e-6
        self.desc_fixed.copy_(fixed)
        self.desc_value.copy_(torch.where(fixed, rows.mean(0), torch.zeros_like(rows[0])))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before the descriptor pinning existed keep this module's (the
        # pipeline fits it from its training bodies before loading).
        state_dict.setdefault(prefix + "desc_fixed", self.desc_fixed.clone())
        state_dict.setdefault(prefix + "desc_value", self.desc_value.clone())
        # weights saved before the skip or the normalisation existed had none
        state_dict.setdefault(prefix + "skip", torch.zeros(self.joint_channels))
        for name, size, fill in (
            ("joint_mean", self.joint_channels, 0.0), ("joint_std", self.joint_channels, 1.0),
            ("global_mean", self.global_dim, 0.0), ("global_std", self.global_dim, 1.0),
        ):  # fmt: skip
            state_dict.setdefault(prefix + name, torch.full((size,), fill))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class AttentionBlock(nn.Module):
    """Pre-norm self-attention over tokens + a feed-forward layer, both residual.
    x (B, T, dim), valid (B, T) bool: invalid tokens are never attended to. Written out
    (instead of nn.TransformerEncoderLayer) so that TorchScript and ONNX exports keep the
    batch dimension dynamic."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} is not a multiple of heads={heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = q @ k.transpose(-1, -2) / float(d // h) ** 0.5  # (B, H, T, T)
        scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
        attn = torch.softmax(scores, dim=-1) @ v  # (B, H, T, d/h)
        x = x + self.out(attn.transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.norm2(x))


def pad_joints(rows: Sequence[torch.Tensor], num_joints: int) -> torch.Tensor:
    """Stack per-body (B_i, J_i, ...) tensors into (sum B_i, num_joints, ...), zero-padded."""
    out = []
    for r in rows:
        if r.shape[1] > num_joints:
            raise ValueError(f"a body has {r.shape[1]} joints, more than the padding {num_joints}")
        pad = [0, 0] * (r.dim() - 2) + [0, num_joints - r.shape[1]]
        out.append(nn.functional.pad(r, pad))
    return torch.cat(out, dim=0)
