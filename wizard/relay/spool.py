"""The relay's spool: every accepted message on disk, fsynced, with a journal beside it.

    <spool>/queue/<id>.eml    the message as it came (bytes after DATA)
    <spool>/queue/<id>.json   its journal: envelope, client, state, attempts, next attempt, Graph draft id
    <spool>/dead/             messages that failed for good (the dead-letter folder), same two files
    <spool>/done/<id>.json    the journal of a delivered message (kept for `relay status`, pruned after 7 days)
    <spool>/tmp/              files being written
    <spool>/.changed          touched by `relay queue retry|drop`: a running relay reads the queue again

A message is accepted when its journal has been renamed into queue/ and the folder fsynced
(write to tmp/, fsync, rename: the durable pattern); only then does the SMTP side answer 250.
A message file without a journal is a submission that was never acknowledged: it is removed
at start. Every journal change is written the same way (tmp, fsync, rename, fsync folder) while
holding ``<spool>/.lock`` (flock), the lock `mailwizard relay queue retry|drop` takes too, so
the CLI acts safely on a running relay.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path

from wizard.config.files import sync_folder

STATES = ("queued", "drafted", "sending", "delivered", "dead")
KEEP_DONE = 7 * 86400


class SpoolFull(OSError):
    """No room to store a message (ENOSPC, EDQUOT, EFBIG): the SMTP side answers 452."""


class SpoolBusy(OSError):
    """Another relay process holds this spool."""


def new_id(now: float | None = None) -> str:
    return f"{int((now or time.time()) * 1000):012x}-{secrets.token_hex(5)}"


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.queue = self.root / "queue"
        self.dead = self.root / "dead"
        self.done = self.root / "done"
        self.tmp = self.root / "tmp"
        self._pruned_at = 0.0

    def open(self) -> "Spool":
        """Create the folders (mode 0700) and clear what a crash left half-written."""
        for d in (self.root, self.queue, self.dead, self.done, self.tmp):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.chmod(self.root, 0o700)
        except OSError:
            pass
        with self.locked():              # `relay queue retry|drop` may be at work meanwhile
            self._finish_cut_short()
        self.prune()
        return self

    def _finish_cut_short(self) -> None:
        for p in self.tmp.iterdir():
            p.unlink(missing_ok=True)
        for p in self.queue.glob("*.eml"):
            if p.with_suffix(".json").exists():
                continue
            if (self.dead / f"{p.stem}.json").exists():  # `queue retry` of a dead one cut short: it stays dead
                os.replace(p, self.dead / p.name)
            else:                                        # never acknowledged: the client got no 250
                p.unlink(missing_ok=True)
        for mid, truth in self.cut_short().items():     # finish what a crash cut short, as its journal says
            for folder in (self.queue, self.dead, self.done):
                if folder.name != truth:
                    (folder / f"{mid}.json").unlink(missing_ok=True)
            if truth == "done":
                (self.queue / f"{mid}.eml").unlink(missing_ok=True)
        for mid in self.ids():                           # bury() cut short before its journal: queued again
            eml = self.queue / f"{mid}.eml"
            if not eml.exists() and (self.dead / eml.name).exists():
                os.replace(self.dead / eml.name, eml)
        for folder in (self.queue, self.dead):
            sync_folder(folder)

    def cut_short(self) -> dict[str, str]:
        """Messages a crash left with a journal in two folders, and the folder whose journal is the truth:
        "done" (delivered() stopped after writing it), "dead" (bury() did), "queue" (`queue retry` of a
        dead message did: its .eml is back in queue/)."""
        queue = set(self.ids())
        out = {mid: "done" for mid in queue & set(self.ids("done"))}
        for mid in (queue & set(self.ids("dead"))) - set(out):
            out[mid] = "queue" if (self.queue / f"{mid}.eml").exists() else "dead"
        return out

    # -- one relay per spool ------------------------------------------------------------------
    def claim(self) -> int:
        """Hold the spool for this relay process until ``os.close()`` of the returned descriptor
        (flock on <spool>/.running, released by the kernel when the process dies). Raises SpoolBusy
        when another relay holds it: two would deliver the same queue, and a second one's start
        would clear files the first is writing."""
        import errno
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root / ".running", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl
        except ImportError:         # Windows: no such guard
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise SpoolBusy(errno.EBUSY, "another mailwizard relay runs on this spool"
                            + (f" (pid {holder})" if holder.isdigit() else "")) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return fd

    # -- the lock shared with the CLI ---------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        try:
            import fcntl
        except ImportError:         # Windows: journal writes are still atomic
            yield
            return
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- accepting --------------------------------------------------------------------------
    def store(self, data: bytes, journal: dict) -> str:
        """Write the message and its journal durably; returns the id. Raises SpoolFull when
        there is no room (nothing is left behind then)."""
        mid = new_id()
        journal = {**journal, "id": mid, "state": "queued", "attempts": 0, "received": time.time(),
                   "next_attempt": 0.0, "size": len(data)}
        tmp_eml, tmp_json = self.tmp / f"{mid}.eml", self.tmp / f"{mid}.json"
        try:
            _write_synced(tmp_eml, data)
            _write_synced(tmp_json, json.dumps(journal).encode())
            os.replace(tmp_eml, self.queue / f"{mid}.eml")
            os.replace(tmp_json, self.queue / f"{mid}.json")
            sync_folder(self.queue)
        except OSError as exc:
            for p in (tmp_eml, tmp_json, self.queue / f"{mid}.json", self.queue / f"{mid}.eml"):
                with contextlib.suppress(OSError):
                    p.unlink()
            import errno
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise SpoolFull(exc.errno, "the spool's disk is full") from None
            raise
        return mid

    # -- reading ----------------------------------------------------------------------------
    def journal(self, mid: str, where: str = "queue") -> dict | None:
        try:
            return json.loads((getattr(self, where) / f"{mid}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def message(self, mid: str, where: str = "queue") -> bytes:
        return (getattr(self, where) / f"{mid}.eml").read_bytes()

    def ids(self, where: str = "queue") -> list[str]:
        try:
            return sorted(p.stem for p in getattr(self, where).glob("*.json"))
        except OSError:
            return []

    def journals(self, where: str = "queue") -> list[dict]:
        return [j for j in (self.journal(m, where) for m in self.ids(where)) if j]

    def find(self, mid: str) -> str | None:
        """The folder ('queue' or 'dead') holding message ``mid`` (a unique prefix will do)."""
        for where in ("queue", "dead"):
            hits = [m for m in self.ids(where) if m == mid] or [m for m in self.ids(where) if m.startswith(mid)]
            if len(hits) == 1:
                return where + ":" + hits[0]
        return None

    # -- changing ---------------------------------------------------------------------------
    def update(self, mid: str, **changes) -> dict | None:
        """Change a queued message's journal durably (under the lock). None when it is no longer
        queued (dropped from the CLI meanwhile)."""
        return self._change(mid, "queue", changes)

    def _change(self, mid: str, where: str, changes: dict) -> dict | None:
        with self.locked():
            j = self.journal(mid, where)
            if j is None:
                return None
            j.update(changes)
            self._write_journal(getattr(self, where), j)
            return j

    def _write_journal(self, folder: Path, j: dict) -> None:
        tmp = self.tmp / f"{j['id']}.json.{secrets.token_hex(3)}"
        try:
            _write_synced(tmp, json.dumps(j).encode())
            os.replace(tmp, folder / f"{j['id']}.json")
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        sync_folder(folder)

    def delivered(self, mid: str, **changes) -> None:
        """Journal first (done/), then the queue's files go: a crash in between is seen at start."""
        with self.locked():
            j = self.journal(mid)
            if j is None:
                return
            j.update(changes, state="delivered", delivered_at=time.time())
            self._write_journal(self.done, j)
            (self.queue / f"{mid}.json").unlink(missing_ok=True)
            (self.queue / f"{mid}.eml").unlink(missing_ok=True)
            sync_folder(self.queue)
        if time.time() - self._pruned_at > 3600:
            self.prune()

    def bury(self, mid: str, **changes) -> dict | None:
        """Move a message to the dead-letter folder."""
        with self.locked():
            j = self.journal(mid)
            if j is None:
                return None
            j.update(changes, state="dead", dead_at=time.time())
            moved = False
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.queue / f"{mid}.eml", self.dead / f"{mid}.eml")
                moved = True
            try:
                self._write_journal(self.dead, j)
            except OSError:              # a full disk: the message stays queued, whole
                if moved:
                    os.replace(self.dead / f"{mid}.eml", self.queue / f"{mid}.eml")
                raise
            (self.queue / f"{mid}.json").unlink(missing_ok=True)
            sync_folder(self.queue)
            return j

    def update_dead(self, mid: str, **changes) -> dict | None:
        """Change a dead message's journal durably (under the lock)."""
        return self._change(mid, "dead", changes)

    def retry(self, mid: str) -> bool:
        """Due now: a queued message's next attempt, or a dead one back into the queue."""
        with self.locked():
            j = self.journal(mid)
            if j is not None:
                j.update(next_attempt=0.0)
                self._write_journal(self.queue, j)
                self._mark_changed()
                return True
            j = self.journal(mid, "dead")
            if j is None or not (self.dead / f"{mid}.eml").exists():   # no message left to send
                return False
            j.update(state="queued", next_attempt=0.0, attempts=0, received=time.time(), last_error="")
            j.pop("dsn_due", None)
            if j.get("draft_id"):       # its draft may have been sent: the next attempt checks it, makes none anew
                j["state"] = "sending" if j.get("sending_at") is not None else "drafted"
            os.replace(self.dead / f"{mid}.eml", self.queue / f"{mid}.eml")
            self._write_journal(self.queue, j)
            (self.dead / f"{mid}.json").unlink(missing_ok=True)
            sync_folder(self.dead)
            self._mark_changed()
            return True

    def drop(self, mid: str) -> bool:
        with self.locked():
            found = False
            for folder in (self.queue, self.dead):
                for suffix in (".json", ".eml"):
                    p = folder / f"{mid}{suffix}"
                    if p.exists():
                        p.unlink()
                        found = True
                sync_folder(folder)
            if found:
                self._mark_changed()
            return found

    # -- telling a running relay (its scheduler keeps the queue's next attempts in memory) -----
    def changed_mark(self) -> int:
        """When `relay queue retry|drop` last changed the spool (ns; 0: never): the relay reads the
        queue's journals again when this moves."""
        try:
            return os.stat(self.root / ".changed").st_mtime_ns
        except OSError:
            return 0

    def _mark_changed(self) -> None:
        """Under the lock: move the mark strictly forward (two changes within one clock tick differ too)."""
        path, stamp = self.root / ".changed", max(time.time_ns(), self.changed_mark() + 1)
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            os.utime(path, ns=(stamp, stamp))

    def prune(self, now: float | None = None) -> None:
        """Forget delivered messages' journals after KEEP_DONE (at start, then at most hourly)."""
        self._pruned_at = time.time()
        horizon = (now or time.time()) - KEEP_DONE
        for p in self.done.glob("*.json"):
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < horizon:
                    p.unlink()
