"""One robot's control loop without ROS: observation -> policy -> action map -> clip ->
adaptation. The ROS policy node, the reality-gap closed loop (`xembody.real.gap`) and the
tests all run this one class; safety filtering comes after it (`xembody.real.safety`).

    controller = PolicyController.load("exported/")           # or (policy, emb, adapter)
    controller.reset()                                          # gait clock and last action
    out = controller.step(state, Command(twist=(0.5, 0, 0)))    # every control period
    robot.send(out)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from xembody.models.exported import ExportedPolicy
from xembody.real.observation import ActionMap, Command, ObservationBuilder, twist_limits
from xembody.real.robot import RobotState, target_limits
from xembody.sim.bodies.embodiment import Embodiment


class PolicyController:
    """An exported policy driving one robot, one control period per `step`.

    Contract of `step(state, cmd) -> out`:

    - `state`: a `RobotState` with joint arrays (nj,) in the Embodiment's joint order (q in
      rad or m, dq in rad/s or m/s); IMU and odometry fields as the policy's terms need them
      (IMU quaternion w,x,y,z of the IMU site in the world, gyro rad/s in the IMU frame;
      odometry pose in the world frame, twist in the base frame).
    - `cmd`: the operator's `Command` (twist m/s, m/s, rad/s in the base frame; goal (x, y)
      m in the odometry frame; end-effector target pos m and quat w,x,y,z in the arm's
      world frame; range scan m).
    - `out`: for joint-offset policies the targets (nj,) float64 in the Embodiment's joint
      order (rad or m for position actuators, rad/s or m/s for velocity actuators): joints
      the policy does not drive at their default, clipped into `target_limits`, then
      adapted when an adapter is given; for "body_twist" policies the base twist (3,)
      (vx m/s, vy m/s, wz rad/s, base frame) clipped to what the wheels allow.
    - Each step runs the observation (`ObservationBuilder`, (obs_dim,) float32), the
      network (raw action (num_actions,) float32), the action map with the policy's clip
      and scale, the limit clip and the optional adapter, in that order. After a step,
      `last_action` holds the action clipped to +-action_clip (fed back as the next
      observation's last_action term, as the env feeds it in training) and the gait
      clock has advanced by one period 1 / control_hz (s).
    - A missing input (no IMU reading yet, no goal) or a non-finite observation raises
      ValueError and changes nothing: the caller sends no command this period.

    Attributes after a step: `obs`, `action`, `desired` (targets before adaptation),
    `out`, and `stage_ns` (time per stage: observation, inference, action, adapt).
    `adapter(q, dq, desired) -> command` is an `ActionAdapter` or any callable like it;
    with `predict` the observation is built from `adapter.predict(q, dq)`, the readings
    expected when the command takes effect (a Smith predictor).
    """

    def __init__(
        self,
        policy: ExportedPolicy,
        emb: Embodiment,
        adapter: Any = None,
        *,
        control_hz: float | None = None,
        predict: bool = False,
    ):
        self.policy, self.emb, self.adapter = policy, emb, adapter
        contract = policy.contract
        self.builder = ObservationBuilder(contract, emb)
        self.actions = ActionMap(contract, emb)
        self.twist_output = self.actions.twist_output
        self.control_hz = float(control_hz or policy.control_hz)
        self.period = 1.0 / self.control_hz  # s, one step of the gait clock
        if self.twist_output:
            self.hi = twist_limits(emb)
            self.lo = -self.hi
        else:
            self.lo, self.hi = target_limits(emb)
        if adapter is not None:
            if self.twist_output:
                raise ValueError("adapter: a body-twist policy has no joint targets to adapt")
            if hasattr(adapter, "set_limits"):
                adapter.set_limits(self.lo, self.hi)
        if predict and not hasattr(adapter, "predict"):
            raise ValueError("predict=True needs an adapter with a predict(q, dq) method")
        self.predict = predict
        self.stage_ns: dict[str, int] = {}
        self.reset()

    @classmethod
    def load(
        cls,
        folder: str | Path,
        backend: str = "onnx",
        *,
        emb: Embodiment | None = None,
        adapter: Any = None,
        control_hz: float | None = None,
        predict: bool = False,
    ) -> PolicyController:
        """From an export folder; the body is the one bundled there unless `emb` is given."""
        if emb is None:
            from xembody.models.exported import export_body

            emb = export_body(folder)
        policy = ExportedPolicy.load(folder, backend)
        return cls(policy, emb, adapter, control_hz=control_hz, predict=predict)

    def reset(self, phase: float = 0.0) -> None:
        """Start over: zero last action, gait clock at `phase` (periods, 0 = the contract's
        origin); an adapter restarts its history at its next call."""
        self.builder.phase = float(phase) % 1.0
        self.last_action = np.zeros(self.policy.num_actions)
        self.obs: np.ndarray | None = None
        self.action: np.ndarray | None = None
        self.desired: np.ndarray | None = None
        self.out: np.ndarray | None = None

    @property
    def phase(self) -> float:
        """The gait clock, in periods [0, 1)."""
        return self.builder.phase

    def observe(self, state: RobotState, cmd: Command) -> np.ndarray:
        """The observation (obs_dim,) float32 for `state` and `cmd` (no side effects)."""
        return self.builder(state, cmd, self.last_action)

    def step(self, state: RobotState, cmd: Command) -> np.ndarray:
        """One control period (see the class docstring): targets (nj,) or twist (3,)."""
        t0 = time.perf_counter_ns()
        seen = state
        if self.predict:
            q, dq = self.adapter.predict(state.q[None], state.dq[None])
            seen = _with_joints(state, q[0], dq[0])
        obs = self.builder(seen, cmd, self.last_action)
        t1 = time.perf_counter_ns()
        action = self.policy(obs)  # ValueError on a non-finite observation
        t2 = time.perf_counter_ns()
        if self.twist_output:
            desired = np.clip(self.actions.twist(action), self.lo, self.hi)
        else:
            desired = np.clip(self.actions.targets(action), self.lo, self.hi)
        t3 = time.perf_counter_ns()
        out = desired
        if self.adapter is not None:
            out = self.adapter(state.q, state.dq, desired)
        t4 = time.perf_counter_ns()
        self.obs, self.action, self.desired, self.out = obs, action, desired, out
        self.last_action = np.clip(action.astype(float), -self.actions.clip, self.actions.clip)
        self.builder.advance(self.period)
        self.stage_ns = {"observation": t1 - t0, "inference": t2 - t1, "action": t3 - t2}
        if self.adapter is not None:
            self.stage_ns["adapt"] = t4 - t3
        return out


def _with_joints(state: RobotState, q: np.ndarray, dq: np.ndarray) -> RobotState:
    return dataclasses.replace(state, q=np.asarray(q, dtype=float), dq=np.asarray(dq, dtype=float))


__all__ = ["Command", "PolicyController"]
