"""`Recorder`: a writer thread in front of a `Dataset` (`xembody.models.dataset`), so that
recording never waits for the disk. The recorder node (`real/ros/recorder.py`) and teleop
sessions (`real/teleop/session.py`) write through it."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np

from xembody.models.dataset import Dataset


class Recorder:
    """A writer thread in front of a `Dataset`: recording never waits for the disk.

    `add_frame` validates the frame, copies it into a queue and returns at once; when the
    queue already holds `max_queue` frames the frame is dropped, counted, and the episode's
    metadata records how many frames it lost (`dropped_frames`). Episode ends are never
    dropped. A failure in the writer thread is raised again from the next call."""

    def __init__(self, dataset: Dataset, max_queue: int = 256) -> None:
        dataset.check_writable()
        self.dataset = dataset
        self.max_queue = int(max_queue)
        self.frames = 0  # frames written to the dataset
        self.dropped = 0  # frames dropped in total
        self.episodes = 0  # episodes committed through this recorder
        self.bytes_written = 0  # raw (uncompressed) bytes of written frames
        self._episode_dropped = 0
        self._queue: deque[tuple[str, Any]] = deque()
        self._queued_frames = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="xembody-recorder", daemon=True)
        self._thread.start()

    def add_frame(self, frame: dict[str, Any]) -> bool:
        """Queue one frame; False when it was dropped because the writer is behind."""
        self._raise_error()
        arrays = {k: np.array(v, copy=True) for k, v in self.dataset.validate(frame).items()}
        with self._cond:
            if self._queued_frames >= self.max_queue:
                self.dropped += 1
                self._episode_dropped += 1
                return False
            self._queue.append(("frame", arrays))
            self._queued_frames += 1
            self._cond.notify()
        return True

    def end_episode(self, **meta: Any) -> None:
        """Commit the episode once its queued frames are written."""
        self._push(("save", {**meta, "dropped_frames": self._episode_dropped}))
        self._episode_dropped = 0

    def discard_episode(self) -> None:
        self._push(("discard", None))
        self._episode_dropped = 0

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far is written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"recorder: {len(self._queue)} items still queued")
                self._cond.wait(left)
        self._raise_error()

    def stats(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "episodes": self.episodes,
            "bytes_written": self.bytes_written,
            "queued": self._queued_frames,
        }

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, stop the thread. The episode in flight stays uncommitted."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join(timeout)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writer thread ------------------------------------------------------------------
    _busy = False

    def _push(self, item: tuple[str, Any]) -> None:
        self._raise_error()
        with self._cond:
            self._queue.append(item)
            self._cond.notify()

    def _run(self) -> None:
        ds = self.dataset
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                kind, payload = self._queue.popleft()
                if kind == "frame":
                    self._queued_frames -= 1
                self._busy = True
            try:
                if kind == "frame":
                    ds.add_frame(payload)
                    self.frames += 1
                    self.bytes_written += sum(a.nbytes for a in payload.values())
                elif kind == "save":
                    if ds.frames_in_flight:
                        ds.save_episode(**payload)
                        self.episodes += 1
                else:
                    ds.discard_episode()
            except BaseException as err:  # kept and raised in the caller's thread
                self._error = err
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"recorder writer failed: {err}") from err
