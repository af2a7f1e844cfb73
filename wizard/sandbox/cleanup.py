"""The sandbox's temporary files (its CA, the server's private key, the
certificate flow's key) go when the process ends, however it ends.

``remove_at_end(path)`` removes a path at a normal exit (atexit). A process
that may end otherwise (a closed terminal: the wizard leaves with os._exit;
SIGTERM, SIGKILL) starts ``watch()`` first: a small watcher process, in its own
session (no signal from the terminal reaches it), reads the paths from a pipe
and removes them when the pipe closes, that is when this process is gone.
``stop_on_signals()`` turns SIGTERM, SIGHUP and SIGINT into a normal end for
the commands that just serve the sandbox.
"""

from __future__ import annotations

import atexit
import shutil
import threading

_WATCHER = (
    "import shutil, sys\n"
    "paths = [line.rstrip('\\n') for line in sys.stdin]\n"     # until the parent's end closes
    "for p in paths:\n"
    "    shutil.rmtree(p, ignore_errors=True)\n"
)

_lock = threading.Lock()
_paths: list[str] = []
_watcher = None


def remove_at_end(path) -> None:
    """Remove path (a folder) when this process ends."""
    path = str(path)
    atexit.register(shutil.rmtree, path, True)
    with _lock:
        _paths.append(path)
        if _watcher is not None:
            _tell(path)


def watch() -> None:
    """Start the watcher (once): paths registered before and after are removed
    even when this process ends without running atexit."""
    global _watcher
    import subprocess
    import sys
    with _lock:
        if _watcher is not None:
            return
        try:
            _watcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHER], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, text=True)
        except OSError:
            return      # atexit still removes them at a normal end
        for path in _paths:
            _tell(path)


def _tell(path: str) -> None:
    try:
        _watcher.stdin.write(path + "\n")
        _watcher.stdin.flush()
    except (OSError, ValueError):
        pass


class Stop:
    """Asked for by SIGINT, SIGTERM or SIGHUP. Not a threading.Event: a handler
    runs in the main thread between two bytecodes, maybe while that thread holds
    the Event's lock inside wait(), and Event.set() there waits for it forever."""

    def __init__(self) -> None:
        self.asked = False

    def ask(self, *_) -> None:
        self.asked = True

    def wait(self, timeout: float) -> bool:
        """Sleep up to timeout (a signal's handler runs meanwhile); whether a stop was asked."""
        if not self.asked:
            import time
            time.sleep(timeout)
        return self.asked


def stop_on_signals() -> Stop:
    """A Stop asked for by SIGINT, SIGTERM or SIGHUP (where it exists), so the
    caller returns normally and everything is cleaned up. Main thread only."""
    import signal
    stop = Stop()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, stop.ask)
    return stop
