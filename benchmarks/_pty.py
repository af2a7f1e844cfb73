"""A program under a pseudo-terminal, as a user's terminal runs it: the harness
reads what the program paints and waits for a text to appear on the screen.

The text is searched in the output with the escape sequences taken out; a
Textual app writes each styled run of a line in one piece, so a title or a
placeholder is found as written."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

ESCAPES = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")
KEYS = {"f1": b"\x1bOP", "f2": b"\x1bOQ", "f3": b"\x1bOR", "f4": b"\x1bOS", "ctrl+n": b"\x0e",
        "ctrl+q": b"\x11", "down": b"\x1b[B", "up": b"\x1b[A", "tab": b"\t", "enter": b"\r"}


class PtyProgram:
    def __init__(self, argv: list[str], *, env: dict, cwd: str, cols: int = 80, rows: int = 24) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(env, TERM=env.get("TERM", "xterm-256color"), COLUMNS=str(cols), LINES=str(rows))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.plain = b""      # everything painted so far, escape sequences removed
        self._raw = b""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:       # the program ended
            return False
        self._raw += data
        # keep an unfinished escape sequence for the next read
        cut = self._raw.rfind(b"\x1b")
        keep = self._raw[cut:] if cut != -1 and len(self._raw) - cut < 64 else b""
        done = self._raw[:len(self._raw) - len(keep)]
        self.plain += ESCAPES.sub(b"", done)
        self._raw = keep
        return True

    def mark(self) -> int:
        """A position in the output: wait_for(..., since=mark) looks only at what comes after."""
        return len(self.plain)

    def wait_for(self, text: str, *, since: int = 0, timeout: float = 30.0) -> float:
        """Seconds (perf_counter) when text appeared after position since."""
        needle = text.encode()
        end = time.perf_counter() + timeout
        while True:
            if self.plain.find(needle, max(0, since - len(needle))) != -1:
                return time.perf_counter()
            left = end - time.perf_counter()
            if left <= 0 or self.proc.poll() is not None and not self._read(0):
                tail = self.plain[-600:].decode(errors="replace")
                raise TimeoutError(f"{text!r} did not appear within {timeout} s; last output: {tail!r}")
            self._read(min(left, 0.05))

    def drain(self, seconds: float = 0.0) -> None:
        end = time.perf_counter() + seconds
        while self._read(max(0.0, end - time.perf_counter())) or time.perf_counter() < end:
            pass

    def press(self, key: str) -> float:
        os.write(self.master, KEYS.get(key, key.encode()))
        return time.perf_counter()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.close(self.master)
