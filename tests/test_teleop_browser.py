"""The browser teleop page in a real browser: headless chromium (Debian's, through
playwright) opens the page `BrowserDevice` serves, holds and clicks its controls, and the
commands reach the device, and through a running `TeleopSession` move the sim arm by the
amount they asked for. Headless chromium has no WebXR device, so the page must say so and
keep working.

Needs the `playwright` Python package (no browser download: the system chromium is
launched) and a `chromium` executable on PATH; skipped without either."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest

from xembody.models.dataset import Dataset
from xembody.real import teleop
from xembody.real.teleop.command import EVENTS, TeleopCommand
from xembody.real.teleop.session import SessionConfig, TeleopSession
from xembody.sim import bodies

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian package: chromium)"
)
NO_XR = "WebXR not available: "


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def browser(chromium):
    """A fresh browser context (its pages close with the test)."""
    context = chromium.new_context()
    yield context
    context.close()


def _open(browser, url: str, init_script: str = ""):
    """A new page on `url`; its uncaught errors and console errors are collected."""
    page = browser.new_page()
    page.errors = []
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    if init_script:
        page.add_init_script(init_script)
    page.goto(url)
    return page


def _set_slider(page, selector: str, value: float) -> None:
    page.eval_on_selector(
        selector, "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", str(value)
    )


def _press(page, label: str) -> None:
    """Mouse down on the button labelled `label` (held until `page.mouse.up()`)."""
    box = page.get_by_role("button", name=label, exact=True).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()


def _settle(dev, quiet_s: float = 0.4, limit_s: float = 5.0) -> None:
    """Wait until the page has stopped posting for `quiet_s` (all sent posts arrived)."""
    t_end, last, t_last = time.monotonic() + limit_s, -1, time.monotonic()
    while time.monotonic() < t_end:
        if dev.posts != last:
            last, t_last = dev.posts, time.monotonic()
        elif time.monotonic() - t_last > quiet_s:
            return
        time.sleep(0.02)
    raise AssertionError(f"the page kept posting for {limit_s} s ({dev.posts} posts)")


def _twist_soon(dev, expected, limit_s: float = 3.0) -> np.ndarray:
    t_end = time.monotonic() + limit_s
    while time.monotonic() < t_end:
        twist = dev.get_command().ee_twist
        if np.allclose(twist, expected):
            return twist
        time.sleep(0.02)
    raise AssertionError(f"device twist {twist.tolist()}, expected {list(expected)}")


def test_page_controls_reach_the_device_in_order_and_say_webxr_is_missing(browser):
    # a dead-man time-out longer than the test, so what is checked is what the page sent
    dev = teleop.make("browser", port=0, timeout_s=30.0)
    post = dev.post

    def jittery(cmd: TeleopCommand) -> None:  # a move arrives later than a stop
        if cmd.ee_twist.any():
            time.sleep(0.12)
        post(cmd)

    dev.post = jittery
    with dev:
        page = _open(browser, dev.url)
        # headless chromium offers navigator.xr but no immersive device: a named message
        status = page.locator("#xr-status")
        sync_api.expect(status).to_contain_text(NO_XR)
        assert status.is_visible() and not page.locator("#xr").is_visible()

        _set_slider(page, "#speed", 0.2)
        _set_slider(page, "#gripper", 0.3)
        _settle(dev)
        assert dev.get_command().gripper == pytest.approx(0.3)
        # 0.2 m/s on the slider; turning buttons at 4x that in rad/s
        buttons = {"+x": (0, 0.2), "down": (2, -0.2), "-y": (1, -0.2), "yaw+": (5, 0.8)}
        for label, (axis, value) in buttons.items():
            twist = np.zeros(6)
            twist[axis] = value
            _press(page, label)
            _twist_soon(dev, twist)
            time.sleep(0.3)  # the page keeps posting the held move (~20 Hz)
            page.mouse.up()
            _settle(dev)  # the release is the last command, though moves arrive late
            assert not dev.get_command().ee_twist.any(), f"{label}: still moving after release"

        # the window losing focus mid-hold (no pointerup will come) stops the arm
        _press(page, "up")
        _twist_soon(dev, [0, 0, 0.2, 0, 0, 0])
        page.evaluate("window.dispatchEvent(new Event('blur'))")
        _settle(dev)
        assert not dev.get_command().ee_twist.any()
        page.mouse.up()

        # phone tilt: top away from you (beta 0) is +x, right side down (gamma 45) is -y;
        # unticking the box stops the arm
        page.check("#tilt")
        page.evaluate(
            "window.dispatchEvent(new DeviceOrientationEvent('deviceorientation', "
            "{alpha: 0, beta: 0, gamma: 45}))"
        )
        _twist_soon(dev, [0.2, -0.2, 0, 0, 0, 0])
        page.uncheck("#tilt")
        _settle(dev)
        assert not dev.get_command().ee_twist.any()

        for name in ("save", "discard", "reset", "quit"):
            page.click(f"#{name}")
        _settle(dev)
        assert dev.get_command().events == set(EVENTS)
        assert dev.get_command().events == frozenset()  # delivered once
        assert page.errors == []

        # a browser without navigator.xr at all (e.g. a phone on plain http over the LAN)
        bare = _open(browser, dev.url, "delete Navigator.prototype.xr")
        sync_api.expect(bare.locator("#xr-status")).to_contain_text(NO_XR + "no navigator.xr")
        assert bare.errors == []


def test_page_buttons_move_the_sim_arm_through_the_session(browser, tmp_path):
    # reach's control rate; a slow speed, so that even a hold stretched by a catching-up
    # loop (below) stays in reach of arm_s0, whose home is 8 cm from full extension in +x
    hz, speed, hold_s = 50, 0.05, 0.8
    emb = bodies.sample("arm", seed=0)
    dev = teleop.make("browser", port=0)
    cfg = SessionConfig(episodes=1, episode_seconds=60.0, max_steps=40 * hz)
    result: dict = {}
    with dev:
        session = TeleopSession(emb, dev, tmp_path / "demos.zarr", cfg)
        run = threading.Thread(target=lambda: result.update(session.run()), daemon=True)
        run.start()
        try:
            page = _open(browser, dev.url)
            # the page shows the running session's end effector, and no WebXR
            sync_api.expect(page.locator("#status")).to_contain_text("ee=[", timeout=20_000)
            sync_api.expect(page.locator("#xr-status")).to_contain_text(NO_XR)
            _set_slider(page, "#speed", speed)
            held = {}
            for label in ("+x", "up"):
                _press(page, label)
                t0 = time.monotonic()
                time.sleep(hold_s)
                page.mouse.up()
                held[label] = time.monotonic() - t0
                time.sleep(1.0)  # the hand catches up with the target
            _set_slider(page, "#gripper", 0.4)
            time.sleep(0.2)
            page.click("#save")
            run.join(timeout=20)
            assert not run.is_alive(), "the session did not end on the page's save"
            assert page.errors == []
        finally:
            if run.is_alive():
                dev.post(TeleopCommand(events={"quit"}))
                run.join(timeout=20)
    assert result["saved"] == 1 and result["steps"] < cfg.max_steps

    ds = Dataset.open(tmp_path / "demos.zarr")
    assert ds.meta["device"] == "browser" and ds.num_episodes == 1
    ep = ds.episode(0)
    twist, target, ee, dt = ep["cmd_twist"], ep["ee_target_pos"], ep["ee_pos"], 1.0 / ds.fps
    assert ds.fps == hz and ep["cmd_gripper"][-1, 0] == pytest.approx(0.4)
    phases = []
    for axis, label in ((0, "+x"), (2, "up")):
        steps = np.flatnonzero(twist[:, axis])
        # one contiguous hold, of the page's speed along that axis only
        assert np.all(np.diff(steps) == 1), f"{label}: the move was interrupted"
        expected = np.zeros(6)
        expected[axis] = speed
        np.testing.assert_allclose(twist[steps], np.broadcast_to(expected, (len(steps), 6)))
        # about as long as the button was held, at the control rate (loosely: the realtime
        # loop runs unpaced to catch up after a stall, which a loaded machine causes)
        assert 0.5 * held[label] * hz < len(steps) < (held[label] + 1.0) * hz, (label, steps)
        phases.append((axis, label, steps))
    (_, _, x_steps), (_, _, z_steps) = phases
    assert x_steps[-1] < z_steps[0]
    for (axis, label, steps), end in zip(phases, (z_steps[0], len(ee) - 1), strict=True):
        first = steps[0]
        # the target moved by the commanded amount (frame t holds the target after step t)
        moved = target[steps[-1]] - target[first - 1]
        assert moved[axis] == pytest.approx(len(steps) * speed * dt, abs=1e-6)
        # ... and the measured hand followed it there: from before the press to before the
        # next phase (1 s after the release), within 5 mm, and nowhere else
        hand = ee[end] - ee[first]
        assert hand[axis] > 0.02, f"{label}: the hand moved {hand[axis]:.3f} m"
        assert hand[axis] == pytest.approx(moved[axis], abs=0.005), (label, hand, moved)
        off = np.delete(hand, axis)
        assert np.abs(off).max() < 0.005, f"{label}: the hand drifted {off} m off the axis"
