"""Process plumbing shared by the commands and the build's workers.

- Stop signals as Ctrl-C: `kill`, `docker stop` and a closed terminal unwind like KeyboardInterrupt, so a
  build drops its staging folder and a server stops cleanly instead of dying mid-way.
- TensorFlow's C++ chatter kept out of the way: `quiet_tensorflow`, `native_output_to`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

#: SIGTERM (kill, docker stop) and SIGHUP (the terminal was closed)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise KeyboardInterrupt (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ chatter out of the logs (set before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr file descriptors to `path` (appending): TensorFlow's C++
    logs, tf2onnx and warnings, which bypass Python's sys.stdout/sys.stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
