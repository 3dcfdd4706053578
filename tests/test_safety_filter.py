"""The ROS-free safety filter and joint-state check against real drivers' conventions and
faults: spikes, stamps ahead, clocks that step back, NaN fill, split and position-only
states; and a property test over arbitrary input sequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xembody.real.safety import JointLimits, SafetyConfig, SafetyFilter
from xembody.real.validate import InputError, JointStateCheck, RateGates
from xembody.sim import bodies

ARM = bodies.sample("arm", seed=0)
LIMITS = JointLimits.from_embodiment(ARM)
N = len(LIMITS.names)


def make_filter(**cfg) -> SafetyFilter:
    return SafetyFilter(SafetyConfig(**{"ramp_s": 0.0, **cfg}), LIMITS)


def mid() -> np.ndarray:
    return (LIMITS.low + LIMITS.high) / 2


def bound(f: SafetyFilter, prev: np.ndarray, out: np.ndarray, dt: float) -> bool:
    step = LIMITS.velocity * f.cfg.velocity_scale * min(dt, f.cfg.max_dt_s)
    return bool((np.abs(out - prev) <= step + 1e-9).all())


# --- the bound and the spike -------------------------------------------------------------
@pytest.mark.parametrize("spike", [0.51, 0.97, 3.3])
def test_a_spiked_reading_is_refused_and_the_output_stays_within_the_rate_bound(spike):
    f = make_filter()
    q, t, prev = mid(), 0.0, None
    goal = np.clip(q + 0.02, LIMITS.low, LIMITS.high)
    for k in range(60):
        reading = q.copy()
        if k == 30:
            reading[2] += spike  # one bad but finite reading
            with pytest.raises(ValueError, match=r"implausible joint state: 'joint3' jumped"):
                f.state(t, reading, np.zeros(N))
        else:
            f.state(t, reading, np.zeros(N))
        f.command(t, goal)
        out = f.output(t)
        if prev is not None:
            assert bound(f, prev, out, 0.01), (k, out - prev)
        if k == 30:
            assert f.mode == "hold" and "implausible" in f.reason
        prev, t = out, t + 0.01
    assert f.mode == "active" and np.allclose(out, goal)  # recovered on the next good reading
    assert f.counts["implausible"] == 1


def test_the_effort_clamp_cannot_move_a_command_past_the_rate_bound():
    """The effort clamp follows the measured pose; the rate bound comes after it."""
    f = make_filter(plausible_margin=10.0)  # let the far reading in: only the bound remains
    q = mid()
    f.state(0.0, q, np.zeros(N))
    f.command(0.0, q)
    first = f.output(0.0)
    far = np.clip(q + 1.0, LIMITS.low, LIMITS.high)
    f.state(0.01, far, np.zeros(N))
    f.command(0.01, q)
    out = f.output(0.01)
    assert bound(f, first, out, 0.01)


def test_estop_before_the_first_state_holds_the_first_measured_pose():
    f = make_filter()
    f.estop("operator, before the robot spoke")
    assert f.output(0.0) is None  # nothing commanded before a state
    q = mid() + 0.3 * (np.arange(N) < N - 1)
    q = np.clip(q, LIMITS.low, LIMITS.high)
    f.state(0.01, q, np.zeros(N))
    f.command(0.01, np.clip(np.zeros(N), LIMITS.low, LIMITS.high))
    for k in range(10):
        f.state(0.01 * (k + 1), q, np.zeros(N))
        out = f.output(0.01 * (k + 1))
        assert f.mode == "estop" and np.allclose(out, q)
    f.reset()
    f.state(0.12, q, np.zeros(N))
    f.command(0.12, q)
    assert f.output(0.12) is not None and f.mode in ("ramp", "active")


def test_a_joint_without_a_velocity_limit_still_has_a_rate_bound():
    import dataclasses

    free = dataclasses.replace(LIMITS, velocity=np.full(N, np.inf))  # an MJCF without limits
    f = SafetyFilter(SafetyConfig(ramp_s=0.0, default_velocity=2.0), free)
    assert f.defaulted == list(LIMITS.names)
    q = mid()
    f.state(0.0, q, np.zeros(N))
    f.command(0.0, q)
    f.output(0.0)
    with pytest.raises(ValueError, match="implausible"):
        f.state(0.001, q + 2.0 * (np.arange(N) == 0), np.zeros(N))  # 2 rad in 1 ms
    f.state(0.01, q, np.zeros(N))
    f.command(0.01, np.clip(q + 0.5, LIMITS.low, LIMITS.high))  # a 0.5 rad step
    out = f.output(0.01)
    assert np.abs(out - q).max() <= 2.0 * 0.01 + 1e-9


# --- joint states as drivers publish them ------------------------------------------------
def test_stock_ros2_control_states_are_accepted():
    names = ("j1", "j2", "grip")
    check = JointStateCheck(names)
    # joint_state_broadcaster: arm and gripper in separate messages, effort filled with NaN,
    # a joint we do not drive
    with pytest.raises(InputError) as err:
        check(("j2", "j1", "caster"), [0.2, 0.1, 5.0], [2.0, 1.0, 0.0], [np.nan] * 3, 1.0)
    assert err.value.kind == "partial" and "'grip'" in str(err.value)
    q, dq, tau = check(("grip",), [0.01], [0.0], [np.nan], 1.001)
    assert q.tolist() == [0.1, 0.2, 0.01] and dq.tolist() == [1.0, 2.0, 0.0]
    assert np.isnan(tau).all()


def test_position_only_states_get_a_filtered_velocity():
    check = JointStateCheck(("a",), velocity_tau_s=0.02)
    v = []
    for k in range(100):  # 1 rad/s ramp, 100 Hz, no velocity array
        _, dq, _ = check(("a",), [0.01 * k], [], [], 0.01 * k)
        v.append(dq[0])
    assert v[0] == 0.0 and v[-1] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(InputError, match="velocity of joint 'a' is nan"):
        JointStateCheck(("a",), velocity="measured")(("a",), [0.0], [np.nan], [], 1.0)


def test_each_joint_goes_stale_on_its_own():
    check = JointStateCheck(("a", "b"))
    with pytest.raises(InputError, match="missing"):
        check(("a",), [0.0], [0.0], [], 1.0, received=10.0)
    check(("b",), [0.0], [0.0], [], 1.0, received=10.0)
    for k in range(5):  # only "a" keeps coming
        check(("a",), [0.0], [0.0], [], 1.1 + k, received=10.1 + k)
    assert check.oldest == 10.0  # "b": the filter's watchdog sees it as 4 s old


def test_a_stamp_from_the_future_is_refused_without_freezing_the_stream():
    check = JointStateCheck(("a",))
    check(("a",), [0.0], [0.0], [], 100.0, now=100.0)
    for ahead in (10.0, 86400.0):
        with pytest.raises(InputError, match="ahead of this node's clock") as err:
            check(("a",), [0.0], [0.0], [], 100.0 + ahead, now=100.01)
        assert err.value.kind == "future"
    q, _, _ = check(("a",), [0.5], [0.0], [], 100.02, now=100.02)  # the next genuine one
    assert q[0] == 0.5


def test_a_clock_that_steps_back_is_re_synced():
    check = JointStateCheck(("a",), resync_after=3, resync_s=0.1)
    for k in range(10):
        check(("a",), [0.0], [0.0], [], 50.0 + 0.01 * k, received=0.01 * k)
    t = 0.1  # a sim reset: the stamps start again from 0, received every 10 ms
    for k in range(10):
        with pytest.raises(InputError, match="not after the previous"):
            check(("a",), [0.0], [0.0], [], 0.01 * k, received=t + 0.01 * k)
    q, _, _ = check(("a",), [0.3], [0.0], [], 0.1, received=t + 0.1)  # 0.1 s of them: re-sync
    assert q[0] == 0.3 and check.resyncs == 1 and "stepped back" in check.last_resync
    check(("a",), [0.3], [0.0], [], 0.11, received=t + 0.11)  # and it keeps going
    with pytest.raises(InputError, match="not after the previous"):  # one late message alone
        check(("a",), [0.3], [0.0], [], 0.105, received=t + 0.12)  # does not re-sync
    assert check.resyncs == 1


def test_a_second_clock_interleaved_with_the_genuine_one_never_re_syncs():
    check = JointStateCheck(("a",), resync_after=3, resync_s=0.1)
    for k in range(200):  # genuine at 100 Hz (stamps near 1e9), a rogue at 500 Hz (near 2)
        t = 0.002 * k
        if k % 5 == 0:
            check(("a",), [0.0], [0.0], [], 1e9 + t, received=t)
        else:
            with pytest.raises(InputError, match="not after the previous"):
                check(("a",), [1.0], [0.0], [], 2.0 + t, received=t)
    assert check.resyncs == 0 and check.q[0] == 0.0


def test_a_flooding_publisher_does_not_take_the_others_down():
    gates = RateGates(100.0, burst=3)
    ok = {"policy": 0, "rogue": 0}
    for k in range(1000):  # one second: policy at 50 Hz, rogue at 1000 Hz
        t = k * 0.001
        for source in ("rogue", "policy") if k % 20 == 0 else ("rogue",):
            try:
                gates(t, source)
                ok[source] += 1
            except InputError:
                pass
    assert ok["policy"] == 50 and ok["rogue"] <= 106


# --- any sequence stays inside the limits and the rate bound --------------------------------
EVENT = st.one_of(
    st.tuples(st.just("state"), st.sampled_from(["ok", "spike", "nan", "far"]), st.floats(-3, 3)),
    st.tuples(st.just("command"), st.sampled_from(["ok", "out", "nan"]), st.floats(-4, 4)),
    st.tuples(st.just("estop"), st.just(""), st.just(0.0)),
    st.tuples(st.just("reset"), st.just(""), st.just(0.0)),
    st.tuples(st.just("tick"), st.just(""), st.floats(0.0, 0.3)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(EVENT, min_size=1, max_size=80),
    ramp=st.sampled_from([0.0, 0.3]),
    mode=st.sampled_from(["hold", "damp"]),
)
def test_property_outputs_stay_within_limits_and_rate_and_estop_holds(events, ramp, mode):
    f = SafetyFilter(SafetyConfig(ramp_s=ramp, stale_mode=mode), LIMITS)
    check = JointStateCheck(LIMITS.names)
    rng = np.random.default_rng(len(events))
    t, prev, latched, pose = 0.0, None, False, mid()
    for kind, how, x in events:
        t += 0.005
        if kind == "state":
            q = {"ok": pose + 0.001 * x, "spike": pose + x, "far": pose + 10 * x}.get(how, pose)
            if how == "nan":
                q = pose.copy()
                q[rng.integers(N)] = np.nan
            try:
                q, dq, _ = check(LIMITS.names, q, np.zeros(N), [np.nan] * N, t, now=t)
                f.state(t, q, dq)
                pose = q
            except ValueError:
                pass
        elif kind == "command":
            c = {"ok": np.clip(mid() + x, LIMITS.low, LIMITS.high), "out": LIMITS.high + abs(x)}
            try:
                f.command(t, c.get(how, np.full(N, np.nan)))
            except ValueError:
                pass
        elif kind == "estop":
            f.estop("property test")
            latched = True
        elif kind == "reset":
            f.reset()
            latched = False
        else:
            t += x
        out = f.output(t)
        if out is None:
            assert f.t_state is None
            continue
        assert np.isfinite(out).all()
        assert (out >= LIMITS.low - 1e-9).all() and (out <= LIMITS.high + 1e-9).all()
        if prev is not None:
            dt = t - prev[0]
            assert bound(f, prev[1], out, dt), (out - prev[1], dt)
        if latched:
            assert f.mode == "estop"
            if mode == "hold" and prev is not None:  # never moves away from the held pose
                away = np.abs(out - f.hold_pose) - np.abs(prev[1] - f.hold_pose)
                assert (away <= 1e-9).all(), away
        prev = (t, out)
