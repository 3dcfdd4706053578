"""Teleop devices (parsing of recorded raw input, the browser server over real HTTP,
missing-device messages) and a scripted-device session recorded into a real zarr store."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from xembody.real import teleop
from xembody.real.dataset import Dataset
from xembody.real.teleop.command import DeviceNotFoundError, TeleopCommand
from xembody.real.teleop.evdev import (
    ABS_RZ,
    ABS_X,
    ABS_Y,
    ABS_Z,
    BTN_0,
    BTN_1,
    BTN_SOUTH,
    BTN_START,
    EV_ABS,
    EV_KEY,
    EV_REL,
    EV_SYN,
    GamepadDevice,
    SpaceMouseDevice,
    pack_event,
    parse_events,
    parse_proc_devices,
)  # fmt: skip
from xembody.real.teleop.keyboard import KeyMapper
from xembody.real.teleop.scripted import ScriptedDevice
from xembody.real.teleop.session import SessionConfig, TeleopSession
from xembody.sim import bodies

PROC = """I: Bus=0011 Vendor=0001 Product=0001 Version=ab41
N: Name="AT Translated Set 2 keyboard"
H: Handlers=sysrq kbd event0
B: EV=120013
B: KEY=402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe

I: Bus=0003 Vendor=045e Product=028e Version=0114
N: Name="Microsoft X-Box 360 pad"
H: Handlers=event5 js0
B: EV=20000b
B: KEY=7cdb000000000000 0 0 0 0
B: ABS=3003f

I: Bus=0003 Vendor=256f Product=c635 Version=0111
N: Name="3Dconnexion SpaceMouse Compact"
H: Handlers=event7
B: EV=1f
B: KEY=3 0 0 0 0
B: REL=3f
"""


def test_registry_lists_every_device_and_rejects_unknown_and_duplicate_ids():
    assert {"keyboard", "gamepad", "spacemouse", "browser", "scripted", "teacher"} <= set(
        teleop.names()
    )
    with pytest.raises(KeyError, match="unknown teleop device 'joystick'"):
        teleop.make("joystick")
    with pytest.raises(ValueError, match="registered twice"):
        teleop.register("keyboard", ScriptedDevice, "again")


def test_command_validates_and_round_trips_through_json():
    cmd = TeleopCommand(ee_twist=[0.1, 0, 0, 0, 0, 0.5], gripper=0.3, events={"save"},
                  ee_pose=([0.1, 0.2, 0.3], [1.5, 0, 0, 0]))  # fmt: skip
    back = TeleopCommand.from_dict(json.loads(json.dumps(cmd.to_dict())))
    np.testing.assert_allclose(back.ee_twist, cmd.ee_twist)
    np.testing.assert_allclose(back.ee_pose[1], [1, 0, 0, 0])  # normalised
    assert back.events == {"save"} and back.gripper == 0.3
    with pytest.raises(ValueError, match="ee_twist.*expected 6 finite"):
        TeleopCommand(ee_twist=[0, 0, np.nan, 0, 0, 0])
    with pytest.raises(ValueError, match="gripper=1.5"):
        TeleopCommand(gripper=1.5)
    with pytest.raises(ValueError, match="events \\['jump'\\]"):
        TeleopCommand(events={"jump"})
    with pytest.raises(ValueError, match="keys \\['speed'\\]"):
        TeleopCommand.from_dict({"speed": 1})


def test_keyboard_keys_map_to_twists_that_stop_after_the_hold_time():
    keys = KeyMapper(speed=0.2, angular_speed=1.0, hold_s=0.5)
    keys.press("w", 0.0)
    keys.press("j", 0.0)
    np.testing.assert_allclose(keys.command(0.1).ee_twist, [0.2, 0, 0, 0, 0, 1.0])
    keys.press("s", 0.3)  # reverses x, renews its hold
    np.testing.assert_allclose(keys.command(0.6).ee_twist, [-0.2, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(keys.command(0.9).ee_twist, np.zeros(6))
    keys.press(" ", 1.0)
    keys.press("\n", 1.0)
    cmd = keys.command(1.0)
    assert cmd.gripper == 0.0 and cmd.events == {"save"}
    assert keys.command(1.1).events == frozenset()  # events fire once


def test_missing_devices_are_reported_in_one_line_naming_what_was_looked_for(tmp_path):
    with pytest.raises(DeviceNotFoundError, match="gamepad: none connected.*BTN_GAMEPAD.*"
                       "'AT Translated Set 2 keyboard'"):  # fmt: skip
        GamepadDevice().find(PROC.split("\n\n")[0])
    with pytest.raises(DeviceNotFoundError, match="spacemouse: none connected.*3Dconnexion"):
        SpaceMouseDevice().find(PROC.split("\n\n")[0])
    with pytest.raises(DeviceNotFoundError, match="event99 does not exist"):
        GamepadDevice(path=str(tmp_path / "event99")).connect()
    # the CLI prints one error line and exits 2, no traceback
    cmd = [sys.executable, "-m", "xembody", "teleop", "--device", "keyboard",
           "--out", str(tmp_path / "x.zarr")]  # fmt: skip
    done = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "keyboard: standard input is not a terminal" in done.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_proc_devices_parsing_finds_the_gamepad_and_the_spacemouse():
    devs = parse_proc_devices(PROC)
    assert [d.name for d in devs] == [
        "AT Translated Set 2 keyboard", "Microsoft X-Box 360 pad", "3Dconnexion SpaceMouse Compact"
    ]  # fmt: skip
    assert str(GamepadDevice().find(PROC)) == "/dev/input/event5"
    assert str(SpaceMouseDevice().find(PROC)) == "/dev/input/event7"


def test_gamepad_raw_events_become_twists_gripper_toggles_and_events():
    pad = GamepadDevice(speed=0.2, angular_speed=1.0, deadzone=0.1)
    pad.ranges = {ABS_X: (-32768, 32767), ABS_Y: (-32768, 32767), ABS_Z: (0, 255),
                  ABS_RZ: (0, 255)}  # fmt: skip
    raw = b"".join([
        pack_event(EV_ABS, ABS_Y, -32768, 1.0),  # left stick fully forward -> +x
        pack_event(EV_ABS, ABS_X, 1000, 1.0),  # inside the dead zone -> 0
        pack_event(EV_ABS, ABS_RZ, 255, 1.0),  # right trigger pulled -> +z
        pack_event(EV_KEY, BTN_SOUTH, 1, 1.0), pack_event(EV_KEY, BTN_SOUTH, 0, 1.01),
        pack_event(EV_KEY, BTN_START, 1, 1.02),
        pack_event(EV_SYN, 0, 0, 1.02),
    ])  # fmt: skip
    events = parse_events(raw)
    assert len(events) == 7 and events[0] == (EV_ABS, ABS_Y, -32768)
    pad.feed(events)
    cmd = pad.command()
    np.testing.assert_allclose(cmd.ee_twist, [0.2, 0, 0.2, 0, 0, 0], atol=1e-4)
    assert cmd.gripper == 0.0 and cmd.events == {"save"}
    pad.feed(parse_events(pack_event(EV_ABS, ABS_Y, 0)))
    assert np.allclose(pad.command().ee_twist, [0, 0, 0.2, 0, 0, 0], atol=1e-4)


def test_spacemouse_relative_axes_map_to_a_six_axis_twist():
    mouse = SpaceMouseDevice(speed=0.1, angular_speed=0.5, deadzone=0.05)
    raw = b"".join(pack_event(EV_REL, code, value) for code, value in
                   [(0, 350), (1, -175), (2, 0), (3, 0), (4, 0), (5, -350)])  # fmt: skip
    mouse.feed(parse_events(raw + pack_event(EV_KEY, BTN_0, 1) + pack_event(EV_KEY, BTN_1, 1)))
    cmd = mouse.command()
    # device +x (right) -> robot -y; device -y (away from the operator) -> robot +x
    np.testing.assert_allclose(cmd.ee_twist, [0.05, -0.1, 0, 0, 0, 0.5])
    assert cmd.gripper == 0.0 and cmd.events == {"save"}


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url + "command", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_browser_device_serves_its_page_and_takes_commands_over_http():
    dev = teleop.make("browser", port=0, timeout_s=0.3)
    with dev:
        with urllib.request.urlopen(dev.url, timeout=10) as r:
            page = r.read().decode()
        assert "navigator.xr" in page and 'id="gripper"' in page
        body = {"ee_twist": [0.1, 0, 0, 0, 0, 0], "gripper": 0.25, "events": ["save"]}
        assert _post(dev.url, json.dumps(body).encode()) == (200, {"ok": True})
        cmd = dev.get_command()
        np.testing.assert_allclose(cmd.ee_twist, [0.1, 0, 0, 0, 0, 0])
        assert cmd.gripper == 0.25 and cmd.events == {"save"}
        assert dev.get_command().events == frozenset()  # delivered once
        code, err = _post(dev.url, b'{"ee_twist": [1, 2]}')
        assert code == 400 and "expected 6 finite numbers" in err["error"]
        code, err = _post(dev.url, b"not json")
        assert code == 400
        # a stale twist decays to zero (dead-man), the gripper stays
        import time

        time.sleep(0.4)
        cmd = dev.get_command()
        assert not cmd.ee_twist.any() and cmd.gripper == 0.25
        with urllib.request.urlopen(dev.url + "state", timeout=10) as r:
            assert json.loads(r.read())["posts"] == 1
    busy = teleop.make("browser", port=dev.port)
    with dev.__class__(port=0) as holder:  # a port in use is reported, not a traceback
        busy.port = holder.port
        with pytest.raises(DeviceNotFoundError, match="cannot serve on 127.0.0.1"):
            busy.connect()


def test_scripted_device_session_records_the_expected_dataset(tmp_path):
    emb = bodies.sample("arm", seed=0)
    up = TeleopCommand(ee_twist=[0, 0, 0.1, 0, 0, 0], gripper=1.0)
    still = TeleopCommand(gripper=0.0)
    save, discard = TeleopCommand(events={"save"}), TeleopCommand(events={"discard"})
    script = [
        (25, up), (5, still), (1, TeleopCommand(gripper=0.0, events={"save"})),  # episode 0: 31
        (10, up), (1, discard),  # dropped
        (20, TeleopCommand(ee_twist=[0.1, 0, 0, 0, 0, 0])), (1, save),  # episode 1
    ]  # fmt: skip
    device = ScriptedDevice(script)
    out = tmp_path / "demos.zarr"
    cfg = SessionConfig(realtime=False, episode_seconds=10.0)
    result = TeleopSession(emb, device, out, cfg).run()
    assert result["saved"] == 2 and result["discarded"] == 1 and result["dropped"] == 0

    ds = Dataset.open(out)
    assert ds.num_episodes == 2 and ds.episode_ends.tolist() == [31, 52]
    assert ds.meta["device"] == "scripted" and ds.meta["body"]["name"] == "arm_s0"
    assert [e["end_reason"] for e in ds.episodes] == ["operator", "operator"]
    ep0 = ds.episode(0)
    dt = 1.0 / ds.fps
    # the target rose 0.1 m/s for 25 steps (2 mm each; frame t holds the target after its
    # step's command), then held
    target_z = ep0["ee_target_pos"][:, 2]
    assert target_z[24] - target_z[0] == pytest.approx(24 * 0.1 * dt, abs=1e-5)
    assert np.all(target_z[24:] == target_z[24])
    # the hand followed it: 5 steps after the last command, within 1.5 cm of the target
    err = np.linalg.norm(ep0["ee_pos"][-1] - ep0["ee_target_pos"][-1])
    assert ep0["ee_pos"][-1, 2] - ep0["ee_pos"][0, 2] > 0.03 and err < 0.015
    assert ep0["cmd_gripper"][-1, 0] == 0.0 and ep0["cmd_twist"][0, 2] == pytest.approx(0.1)
    ep1 = ds.episode(1)
    assert ep1["ee_target_pos"][19, 0] - ep1["ee_target_pos"][0, 0] == pytest.approx(
        19 * 0.1 * dt, abs=1e-5
    )
    # the second episode starts from the home pose again (reset after the discard)
    np.testing.assert_allclose(ep1["joint_pos"][0], ep0["joint_pos"][0], atol=1e-6)


def test_executor_runs_the_learner_while_the_device_labels_are_recorded(tmp_path):
    """DAgger-style collection: the env executes the executor's actions (here: hold the
    default pose), the dataset records what the teacher would have done."""
    import torch

    emb = bodies.sample("arm", seed=0)
    cfg = SessionConfig(realtime=False, episode_seconds=0.5, episodes=1, ik_from_measured=True)
    hold = lambda obs: torch.zeros(1, len(emb.joint_names) - 1)  # noqa: E731
    TeleopSession(emb, teleop.make("teacher"), tmp_path / "d.zarr", cfg, executor=hold).run()
    ep = Dataset.open(tmp_path / "d.zarr").episode(0)
    assert len(ep["action"]) == 25
    assert np.abs(ep["action"]).max() > 0.1  # the teacher's labels move toward the target
    # ... but the arm was held: its joints stayed near the default pose
    default = np.array([j.default for j in emb.joints])
    assert np.abs(ep["joint_pos"][:, :-1] - default[:-1]).max() < 0.05
