"""A browser page as a teleoperation device: stdlib http.server on localhost.

`GET /` serves the page (on-screen buttons and a gripper slider; WebXR controller pose on a
headset or phone whose browser offers `navigator.xr`; phone tilt through DeviceOrientation
otherwise). The page posts JSON commands (`TeleopCommand.from_dict`: ee_twist, ee_pose,
base_twist, gripper, events) to `POST /command` at ~20 Hz while a control is held.
`GET /state` returns the robot's end-effector pose and the session status as JSON, which
the page uses to anchor WebXR poses (clutch: robot pose at grab + controller motion since).
The page sends one request at a time (a release never overtakes the move before it),
stops a hold when it loses focus, and where WebXR cannot run it shows "WebXR not
available: <why>" and everything else keeps working.

Safety: a twist older than `timeout_s` (a closed tab, a lost connection) decays to zero;
events are delivered once. Bad posts get HTTP 400 with the reason. The server binds to
127.0.0.1 only; reach it from a phone through an SSH or adb port forward.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from .command import Device, DeviceNotFoundError, SessionState, TeleopCommand
from .registry import register

PAGE = Path(__file__).with_name("browser_page.html")
MAX_BODY = 64 * 1024


class BrowserDevice(Device):
    name = "browser"

    def __init__(self, port: int = 8765, host: str = "127.0.0.1", timeout_s: float = 0.5):
        self.host, self.port, self.timeout_s = host, int(port), timeout_s
        self._lock = threading.Lock()
        self._last = TeleopCommand()
        self._last_t = -np.inf
        self._events: set[str] = set()
        self._gripper: float | None = None
        self._state: dict = {}
        self.posts = 0
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def connect(self) -> None:
        try:
            self.server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        except OSError as err:
            raise DeviceNotFoundError(
                f"browser: cannot serve on {self.host}:{self.port} ({err.strerror}); "
                "choose another --port"
            ) from None
        self.port = self.server.server_address[1]  # port 0 -> the one the OS picked
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def disconnect(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def post(self, cmd: TeleopCommand) -> None:
        with self._lock:
            self._last, self._last_t = cmd, time.monotonic()
            self._events |= cmd.events
            if cmd.gripper is not None:
                self._gripper = cmd.gripper
            self.posts += 1

    def get_command(self, state: SessionState | None = None) -> TeleopCommand:
        with self._lock:
            if state is not None:
                self._state = {
                    "t": state.t,
                    "ee_pos": np.asarray(state.ee_pos).tolist(),
                    "ee_quat": np.asarray(state.ee_quat).tolist(),
                }
            fresh = time.monotonic() - self._last_t <= self.timeout_s
            last, events, self._events = self._last, frozenset(self._events), set()
            return TeleopCommand(
                ee_twist=last.ee_twist if fresh else np.zeros(6),
                ee_pose=last.ee_pose if fresh else None,
                base_twist=last.base_twist if fresh else np.zeros(3),
                gripper=self._gripper,
                events=events,
            )

    def state(self) -> dict:
        with self._lock:
            return {**self._state, "posts": self.posts}

    def help(self) -> str:
        return f"open {self.url} in a browser (buttons, gripper slider, WebXR where offered)"


def _handler(device: BrowserDevice) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the terminal for the session
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif self.path == "/state":
                self._send(200, json.dumps(device.state()).encode())
            elif self.path == "/favicon.ico":  # browsers ask; an empty answer, not a 404
                self.send_response(204)
                self.end_headers()
            else:
                self._send(404, json.dumps({"error": f"no page {self.path}"}).encode())

        def do_POST(self) -> None:
            if self.path != "/command":
                self._send(404, json.dumps({"error": f"no endpoint {self.path}"}).encode())
                return
            try:
                n = int(self.headers.get("Content-Length", "0"))
                if not 0 < n <= MAX_BODY:
                    raise ValueError(f"body of {n} bytes, expected 1..{MAX_BODY}")
                data = json.loads(self.rfile.read(n))
                if not isinstance(data, dict):
                    raise ValueError(f"body {data!r}: expected a JSON object")
                device.post(TeleopCommand.from_dict(data))
            except (ValueError, TypeError) as err:
                self._send(400, json.dumps({"error": str(err)}).encode())
                return
            self._send(200, b'{"ok": true}')

    return Handler


register("browser", BrowserDevice, "page on localhost: buttons, slider, WebXR pose, phone tilt")
