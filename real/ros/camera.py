"""Camera publisher node: synthetic camera topics whose pictures encode their frame counter.

    python -m xembody.real.ros.camera --ros-args -p rate_hz:=30.0 -p cameras:="[
        'left:/camera/left/image_raw:rgb8:640x480', 'wrist:/wrist/compressed:jpeg:320x240']"

Each entry of `cameras` is `name:topic:encoding:WxH`; the encoding picks the message:
rgb8, bgr8, mono8 (sensor_msgs/Image) or jpeg, png (sensor_msgs/CompressedImage, format
"jpeg" / "png"). Every `1 / rate_hz` s all cameras publish one frame with the same stamp
(the node's clock at publish time) and the same frame counter (1, 2, ...), drawn by
`pattern`: the counter's 32 bits as a 4 x 8 grid of black (0) or yellow (R = G = 255,
B = 0) cells over the top two thirds, a fixed colour gradient below (its blue channel
tells the cameras apart). `read_counter` reads the counter back from an RGB picture
(exactly for raw and png, and for jpeg at `jpeg_quality` 90 down to 64 x 48 pixels,
where a cell is 8 x 8). ~/status (String, JSON, 1 Hz): frames published, rate, jitter.

The recorder reads the same `name:topic:kind:WxH` entries (`parse_cameras`), with the
message type as kind: `image` or `compressed`.
"""

from __future__ import annotations

import io
import time
from array import array
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from xembody.real.ros.common import COMMAND_QOS, SENSOR_QOS, declare, publish_json, run
from xembody.real.timing import LoopTimer

RAW_ENCODINGS = ("rgb8", "bgr8", "mono8")  # sensor_msgs/Image
COMPRESSED_FORMATS = ("jpeg", "png")  # sensor_msgs/CompressedImage
GRID = (4, 8)  # rows x columns of counter cells: 32 bits


@dataclass(frozen=True)
class CameraSpec:
    """One camera topic: `name` (the dataset feature is rgb_<name>), `topic`, `kind` (an
    encoding for the publisher, `image` or `compressed` for the recorder), size in pixels."""

    name: str
    topic: str
    kind: str
    width: int
    height: int


def parse_cameras(specs: list[str], kinds: tuple[str, ...]) -> list[CameraSpec]:
    """`name:topic:kind:WxH` entries as CameraSpecs; raises ValueError naming the entry."""
    out = []
    for spec in specs:
        parts = spec.split(":")
        size = parts[3].lower().split("x") if len(parts) == 4 else []
        if len(size) != 2 or not all(s.isdigit() and int(s) > 0 for s in size):
            raise ValueError(
                f"camera {spec!r}: expected 'name:topic:kind:WxH', e.g. "
                f"'left:/camera/left/image_raw:{kinds[0]}:640x480'"
            )
        name, topic, kind = parts[:3]
        if not name.isidentifier() or not topic or kind not in kinds:
            raise ValueError(
                f"camera {spec!r}: name must be an identifier, the topic not "
                f"empty, the kind one of {kinds}"
            )
        if name in {c.name for c in out}:
            raise ValueError(f"camera {spec!r}: a second camera named {name!r}")
        out.append(CameraSpec(name, topic, kind, int(size[0]), int(size[1])))
    return out


def declare_cameras(node: Node, default: list[str], kinds: tuple[str, ...]) -> list[CameraSpec]:
    """Declare the string-array parameter `cameras` and parse it (`parse_cameras`)."""
    description = f"cameras as 'name:topic:kind:WxH', kind one of {', '.join(kinds)}"
    return parse_cameras(list(declare(node, "cameras", default, description, items=str)), kinds)


# --- the picture ----------------------------------------------------------------------------
def _cells(height: int, width: int) -> list[tuple[slice, slice]]:
    rows, cols = GRID
    ch, cw = (2 * height // 3) // rows, width // cols
    if ch < 1 or cw < 1:
        raise ValueError(f"{width}x{height}: too small for {rows}x{cols} counter cells")
    return [
        (slice(r * ch, (r + 1) * ch), slice(c * cw, (c + 1) * cw))
        for r in range(rows)
        for c in range(cols)
    ]


def background(height: int, width: int, index: int = 0) -> np.ndarray:
    """The fixed part of camera `index`'s picture, (H, W, 3) uint8: red along x, green along
    y, blue 40 + 50 x index."""
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, width, dtype=np.float32)[None, :].astype(np.uint8)
    img[..., 1] = np.linspace(0, 255, height, dtype=np.float32)[:, None].astype(np.uint8)
    img[..., 2] = (40 + 50 * index) % 256
    return img


def pattern(counter: int, height: int, width: int, index: int = 0, base=None) -> np.ndarray:
    """Frame `counter` (0 <= counter < 2**32) of camera `index`, (H, W, 3) uint8 RGB."""
    img = (background(height, width, index) if base is None else base).copy()
    for bit, (rows, cols) in enumerate(_cells(height, width)):
        cell = img[rows, cols]  # channel by channel: 4x faster than broadcasting a colour
        cell[..., 0] = cell[..., 1] = 255 * ((counter >> bit) & 1)
        cell[..., 2] = 0
    return img


def read_counter(image: np.ndarray) -> int:
    """The frame counter drawn by `pattern` in an (H, W, 3) or (H, W) uint8 picture (the
    red channel, each cell's central half)."""
    red = image[..., 0] if image.ndim == 3 else image
    counter = 0
    for bit, (rows, cols) in enumerate(_cells(*red.shape[:2])):
        cell = red[rows, cols]
        h, w = cell.shape
        core = cell[h // 4 : h - h // 4 or None, w // 4 : w - w // 4 or None]
        if core.mean() > 127:
            counter |= 1 << bit
    return counter


def encode(img: np.ndarray, encoding: str, quality: int = 90) -> tuple[memoryview, int]:
    """An RGB picture as message data in `encoding`: (bytes, row step; 0 when compressed)."""
    h, w = img.shape[:2]
    if encoding == "rgb8":
        return np.ascontiguousarray(img).reshape(-1).data, 3 * w
    if encoding == "bgr8":
        return np.ascontiguousarray(img[..., ::-1]).reshape(-1).data, 3 * w
    if encoding == "mono8":
        return np.ascontiguousarray(img[..., 0]).reshape(-1).data, w
    from PIL import Image as PILImage

    buf = io.BytesIO()
    pil = PILImage.fromarray(img)
    if encoding == "jpeg":
        pil.save(buf, format="JPEG", quality=quality)
    else:
        pil.save(buf, format="PNG", compress_level=1)
    return buf.getbuffer(), 0


# --- the node -------------------------------------------------------------------------------
class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__("camera")
        self.rate_hz = declare(self, "rate_hz", 30.0, "frames per second", low=0.1, high=1000.0)
        self.quality = declare(self, "jpeg_quality", 90, "JPEG quality", low=1, high=100)
        self.cameras = declare_cameras(
            self, ["cam0:/camera/cam0/image_raw:rgb8:640x480"], RAW_ENCODINGS + COMPRESSED_FORMATS
        )
        self.bases = [background(c.height, c.width, i) for i, c in enumerate(self.cameras)]
        self.counter = 0
        self.timer_stats = LoopTimer(1.0 / self.rate_hz)

        self.pubs = [
            self.create_publisher(
                Image if c.kind in RAW_ENCODINGS else CompressedImage, c.topic, SENSOR_QOS
            )
            for c in self.cameras
        ]
        self.pub_status = self.create_publisher(String, "~/status", COMMAND_QOS)
        self.create_timer(1.0 / self.rate_hz, self.tick)
        self.create_timer(1.0, self.report)
        names = ", ".join(f"{c.name} ({c.kind} {c.width}x{c.height}) on {c.topic}"
                          for c in self.cameras)  # fmt: skip
        self.get_logger().info(f"publishing {names} at {self.rate_hz:g} Hz")

    def tick(self) -> None:
        self.timer_stats.tick(time.monotonic())
        self.counter += 1
        stamp = self.get_clock().now().to_msg()
        for cam, base, pub in zip(self.cameras, self.bases, self.pubs, strict=True):
            img = pattern(self.counter, cam.height, cam.width, base=base)
            data, step = encode(img, cam.kind, self.quality)
            if cam.kind in RAW_ENCODINGS:
                msg = Image(height=cam.height, width=cam.width, encoding=cam.kind, step=step)
            else:
                msg = CompressedImage(format=cam.kind)
            msg.header.stamp, msg.header.frame_id = stamp, f"{cam.name}_optical_frame"
            buf = array("B")
            buf.frombytes(data)  # one copy; a bytes initializer would be copied twice
            msg.data = buf
            pub.publish(msg)

    def report(self) -> None:
        publish_json(self.pub_status, {"frames": self.counter, **self.timer_stats.report()})


def main(args: list[str] | None = None) -> None:
    run(CameraNode, args)


if __name__ == "__main__":
    main()
