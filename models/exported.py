"""Run an exported policy without the training stack (no rsl-rl, no MuJoCo).

An export folder (written by `xembody export`, see `xembody.models.export`) holds:

    policy.onnx   obs (B, obs_dim) float32 -> actions (B, num_actions) float32
    policy.pt     the same network as TorchScript
    policy.json   the sidecar: the policy's contract (format "xembody-policy/2")
    body.xml      the body's MJCF the policy was trained on (+ body.xml.json, its joint
                  facts, and assets/ with any mesh files); format /2 only

The networks output the *raw* action: the deterministic mean, with the observation
normalisation inside. What the robot does with it is in the sidecar's "action" entry
(for the default mapping: clip to +-action_clip, then target = default_pose +
action_scale * action, per joint in `joint_names` order).

    policy = ExportedPolicy.load("exported/")            # onnxruntime
    index = policy.check_joint_names(msg.name)           # /joint_states order -> policy order
    q = np.asarray(msg.position)[index] - policy.default_pose
    action = policy(obs)                                  # (obs_dim,) -> (num_actions,)

Only numpy plus onnxruntime (backend "onnx") or torch (backend "torchscript") are needed.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "xembody-policy/2"
# /1: no conventions, no joint limits or gains, no bundled model (bodies rebuilt from
# body.source); /2 adds them and changes nothing /1 had, so both load.
READABLE_FORMATS = ("xembody-policy/1", FORMAT)
SIDECAR_FILE = "policy.json"
ONNX_FILE = "policy.onnx"
TORCHSCRIPT_FILE = "policy.pt"
MODEL_FILE = "body.xml"  # the body's MJCF, bundled (format /2)
MODEL_FACTS_FILE = "body.xml.json"  # its joint, sensor and action facts (Embodiment.write)
BACKENDS = ("onnx", "torchscript")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_contract(folder: str | Path) -> dict[str, Any]:
    """The sidecar of an export folder, after checking its format version."""
    path = Path(folder) / SIDECAR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no policy sidecar (write one with `xembody export`)")
    contract = json.loads(path.read_text())
    found = contract.get("format")
    if found not in READABLE_FORMATS:
        raise ValueError(
            f"{path}: format {found!r}, this loader reads {' and '.join(READABLE_FORMATS)} "
            "(re-export the checkpoint with this version's `xembody export`)"
        )
    return contract


def export_body(folder: str | Path):
    """The Embodiment an export folder's policy was trained on: the bundled body.xml and
    its facts (format /2; checked against the sidecar's hash, asset paths made absolute so
    that `Embodiment.compile()` finds them), else the body `body.source` names (/1)."""
    from xembody.sim.bodies.embodiment import Embodiment

    contract = read_contract(folder)
    bundled = contract["body"].get("model")
    if not bundled:
        return body_from_source(contract["body"]["source"])
    path = Path(folder) / bundled
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the sidecar bundles this body but it is missing")
    if contract.get("sha256", {}).get("model") not in (None, file_sha256(path)):
        raise ValueError(f"{path}: contents differ from what the sidecar was written for")
    return Embodiment.read(path)  # asset paths made absolute


def body_from_source(source: str):
    """The Embodiment a sidecar's `body.source` names ("generator:<class>(seed=<n>)" or a
    body file; see `xembody.sim.bodies.reference`). For exports without a bundled body.xml
    (format /1); needs MuJoCo."""
    from xembody.sim.bodies.reference import resolve_body

    return resolve_body(source)


class ExportedPolicy:
    """A loaded export folder: call it with observations, read its contract."""

    def __init__(
        self, contract: dict[str, Any], run: Callable[[np.ndarray], np.ndarray], backend: str
    ):
        self.contract = contract
        self.backend = backend
        self._run = run
        self.obs_dim: int = int(contract["obs_dim"])
        self.num_actions: int = int(contract["num_actions"])
        self.joint_names: tuple[str, ...] = tuple(contract["joint_names"])
        self.default_pose = np.asarray(contract["default_pose"], dtype=np.float32)
        self.control_hz: float = float(contract["control_hz"])

    @classmethod
    def load(cls, folder: str | Path, backend: str = "onnx") -> ExportedPolicy:
        """Load `folder` (policy.json and the network file of `backend`)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}, expected one of {BACKENDS}")
        folder = Path(folder)
        contract = read_contract(folder)
        name = contract["files"][backend]
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the sidecar names it but it is missing")
        expected = contract.get("sha256", {}).get(backend)
        if expected and file_sha256(path) != expected:
            raise ValueError(
                f"{path}: contents differ from what {SIDECAR_FILE} was written for "
                "(files from two exports mixed?)"
            )
        run = _onnx_runner(path) if backend == "onnx" else _torchscript_runner(path)
        policy = cls(contract, run, backend)
        out = policy(np.zeros(policy.obs_dim, dtype=np.float32))  # fail now, not on the robot
        if out.shape != (policy.num_actions,):
            raise ValueError(
                f"{path}: outputs {out.shape[-1]} actions, the sidecar says {policy.num_actions}"
            )
        return policy

    # --- inference ----------------------------------------------------------------------
    def __call__(self, obs: np.ndarray | Sequence[float]) -> np.ndarray:
        """(obs_dim,) -> (num_actions,) or (B, obs_dim) -> (B, num_actions), float32."""
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(
                f"observation has shape {np.shape(obs)}, expected ({self.obs_dim},) or "
                f"(batch, {self.obs_dim}); layout: {self.layout_summary()}"
            )
        if not np.isfinite(x).all():
            bad = sorted({t["name"] for t in self.obs_terms() if not _finite(x, t)})
            raise ValueError(f"observation has NaN or inf in term(s) {', '.join(bad)}")
        y = self._run(np.ascontiguousarray(x))
        return y[0] if single else y

    # --- contract helpers ---------------------------------------------------------------
    def obs_terms(self) -> list[dict[str, Any]]:
        """[{name, start, size, units, frame, doc}, ...] in observation order."""
        return list(self.contract["observation"]["terms"])

    def layout_summary(self) -> str:
        return ", ".join(
            f"{t['name']}[{t['start']}:{t['start'] + t['size']}]" for t in self.obs_terms()
        )

    def check_joint_names(self, names_from_robot: Sequence[str]) -> np.ndarray:
        """Index array `idx` with `robot_values[idx]` in the policy's joint order.

        `names_from_robot` is the robot's joint order (e.g. sensor_msgs/JointState.name).
        The rule of the ROS nodes (`xembody.real.validate.JointStateCheck`): every policy
        joint must be there exactly once; missing ones are an error naming them; extra
        joints (a gripper the policy does not drive, another controller's joints) are
        ignored; a name given twice is an error.
        """
        names = list(names_from_robot)
        missing = [n for n in self.joint_names if n not in names]
        dupes = sorted({n for n in names if names.count(n) > 1})
        problems = []
        if missing:
            problems.append(f"missing policy joint(s) {missing}")
        if dupes:
            problems.append(f"duplicate name(s) {dupes}")
        if problems:
            raise ValueError(
                f"joint names from the robot do not match the policy: {'; '.join(problems)} "
                f"(policy joints, in action order: {list(self.joint_names)})"
            )
        return np.array([names.index(n) for n in self.joint_names], dtype=np.intp)

    @property
    def body_name(self) -> str:
        return str(self.contract["body"]["name"])

    def __repr__(self) -> str:
        c = self.contract
        return (
            f"ExportedPolicy(task={c['task']!r}, body={self.body_name!r}, "
            f"backend={self.backend!r}, obs_dim={self.obs_dim}, num_actions={self.num_actions}, "
            f"iteration={c['checkpoint']['iteration']})"
        )


def _finite(x: np.ndarray, term: dict[str, Any]) -> bool:
    return bool(np.isfinite(x[:, term["start"] : term["start"] + term["size"]]).all())


def _onnx_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a small MLP: threads cost more than they give
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: x})[0]

    return run


def _torchscript_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run
