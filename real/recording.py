"""What the ROS 2 recorder node (`xembody.real.ros.recorder`) does without ROS: the alignment
of recorded streams to the frame clock (`Stream`: latest message stamped at or before the
tick, refused when older than the stream's max age) and the conversion of camera pictures
(sensor_msgs/Image and CompressedImage payloads) to (H, W, 3) uint8 RGB. The rules are the
node's; docs/ROS.md ("Recording") states them."""

from __future__ import annotations

import io
from collections import deque

import numpy as np

from xembody.real.validate import InputError

CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}  # the sensor_msgs/Image encodings recorded
# the robot's state streams are aligned on their receipt by default: the sim robot node
# stamps simulated time, which falls behind the wall clock whenever the physics does
RECEIPT_STAMPED = ("joint_states", "imu", "odom")
DROP_REASONS = ("queue", "stale", "missing", "late", "invalid")


class Stream:
    """One recorded stream's recent messages, (stamp s, {feature: array}) oldest first;
    `keep` of them, so a tick that runs late still finds the one stamped before its time."""

    def __init__(self, name: str, max_age: float, keep: int = 8):
        self.name = name
        self.max_age = max_age
        self.msgs: deque[tuple[float, dict[str, np.ndarray]]] = deque(maxlen=keep)
        self.received = 0

    def push(self, stamp: float, values: dict[str, np.ndarray]) -> None:
        self.msgs.append((stamp, values))
        self.received += 1

    def pick(self, t: float) -> tuple[str, dict[str, np.ndarray] | None, float]:
        """("ok", values, age) for the latest message stamped at or before `t`;
        ("stale", None, age) when it is older than `max_age`; ("missing", None, nan)."""
        for stamp, values in reversed(self.msgs):
            if stamp <= t:
                age = t - stamp
                if self.max_age and age > self.max_age:
                    return "stale", None, age
                return "ok", values, age
        return "missing", None, float("nan")


def image_rgb(name: str, encoding: str, height: int, width: int, step: int, data, size):
    """A sensor_msgs/Image's pixels as (H, W, 3) uint8 RGB (a view where it can be);
    `size` (W, H) expected. Raises InputError naming the problem."""
    channels = CHANNELS.get(encoding)
    if channels is None:
        raise InputError(
            "encoding",
            f"camera {name}: Image encoding {encoding!r} is not "
            f"recorded (expected one of {', '.join(CHANNELS)})",
        )
    if (width, height) != tuple(size):
        raise InputError(
            "size",
            f"camera {name}: Image is {width}x{height}, expected "
            f"{size[0]}x{size[1]} (the cameras parameter)",
        )
    row = width * channels
    if step < row or len(data) < step * height:
        raise InputError(
            "size",
            f"camera {name}: Image step {step} with {len(data)} bytes "
            f"does not hold {height} rows of {row} bytes",
        )
    pixels = np.frombuffer(data, np.uint8, count=step * height).reshape(height, step)[:, :row]
    if channels == 1:
        return np.broadcast_to(pixels[..., None], (height, width, 3))
    pixels = pixels.reshape(height, width, 3)
    return pixels[..., ::-1] if encoding == "bgr8" else pixels


def decode_rgb(name: str, fmt: str, data, size) -> np.ndarray:
    """A sensor_msgs/CompressedImage (jpeg or png) decoded to (H, W, 3) uint8 RGB."""
    from PIL import Image as PILImage

    low = fmt.lower()
    if "compresseddepth" in low or (low and not any(k in low for k in ("jpeg", "jpg", "png"))):
        raise InputError(
            "format",
            f"camera {name}: CompressedImage format {fmt!r} is not recorded (expected jpeg or png)",
        )
    try:
        pic = PILImage.open(io.BytesIO(data))
        pic.load()
    except Exception as err:  # Pillow raises several kinds for a broken stream
        raise InputError(
            "decode",
            f"camera {name}: {fmt or 'compressed'} picture of "
            f"{len(data)} bytes does not decode ({err})",
        ) from None
    if pic.mode not in ("RGB", "RGBA", "L", "P"):
        raise InputError(
            "encoding",
            f"camera {name}: compressed picture of mode "
            f"{pic.mode!r} is not recorded (expected 8-bit colour or grey)",
        )
    if pic.size != tuple(size):
        raise InputError(
            "size",
            f"camera {name}: picture is {pic.size[0]}x{pic.size[1]}, "
            f"expected {size[0]}x{size[1]} (the cameras parameter)",
        )
    return np.asarray(pic if pic.mode == "RGB" else pic.convert("RGB"))


def parse_max_ages(entries: list[str], default: float, streams: list[str]) -> dict[str, float]:
    """{stream: max age s} from `stream:seconds` entries, `default` for the others."""
    ages = dict.fromkeys(streams, default)
    for entry in entries:
        name, _, value = entry.rpartition(":")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if name not in ages or seconds < 0:
            raise ValueError(
                f"stream_max_age_s entry {entry!r}: expected 'stream:seconds' "
                f"(seconds >= 0) with a stream among {streams}"
            )
        ages[name] = seconds
    return ages
