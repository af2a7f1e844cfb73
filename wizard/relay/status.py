"""What `mailwizard relay status` and `relay queue list` show, read from the spool (no daemon needed)."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime


def _iso(ts) -> str | None:
    return datetime.fromtimestamp(float(ts)).astimezone().isoformat(timespec="seconds") if ts else None


def _row(j: dict) -> dict:
    return {"id": j.get("id"), "client": j.get("client"), "from": j.get("sender"), "to": j.get("rcpts") or [],
            "size": j.get("size"), "received": _iso(j.get("received")), "attempts": j.get("attempts", 0),
            "state": j.get("state"), "last_error": j.get("last_error") or None, "dsn": bool(j.get("dsn"))}


def status(spool, protocol: str, now: float | None = None) -> dict:
    """Read under the spool's lock (the one delivery and `relay queue retry|drop` take): a message moving
    between folders meanwhile is counted once. Without write access to the spool, read unlocked."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(spool.locked())
        except OSError:
            pass
        return _read(spool, protocol, now)


def _read(spool, protocol: str, now: float | None) -> dict:
    now = now or time.time()
    queued, retrying = [], []
    twice = spool.cut_short()           # a crash between two folders: count the message where its truth is
    for j in spool.journals():
        if twice.get(j.get("id"), "queue") != "queue":
            continue
        if int(j.get("attempts") or 0) > 0:
            retrying.append({**_row(j), "next_attempt": _iso(max(float(j.get("next_attempt") or 0), now))})
        else:
            queued.append(_row(j))
    dead = [{**_row(j), "dead_at": _iso(j.get("dead_at"))} for j in spool.journals("dead")
            if twice.get(j.get("id"), "dead") == "dead"]
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    delivered = sum(1 for j in spool.journals("done") if float(j.get("delivered_at") or 0) >= midnight)
    return {"queued": len(queued), "retrying": retrying, "dead": len(dead), "delivered_today": delivered,
            "queued_messages": queued, "dead_messages": dead, "spool": str(spool.root), "protocol": protocol,
            "delivery": "exactly once (Graph: draft, then send)" if protocol == "graph" else
            "at least once (SMTP upstream: a crash after the server's 250 sends it again)"}


def counts(relay, protocol: str, now: float | None = None) -> dict:
    """{"queued", "retrying", "dead", "delivered_today"} of the relay a config sets up,
    read from its spool (all 0 when the relay never ran): what monitoring watches."""
    from wizard.relay.spool import Spool
    path = relay.spool_path()
    if not path.is_dir():
        return {"queued": 0, "retrying": 0, "dead": 0, "delivered_today": 0}
    data = status(Spool(path), protocol, now)
    return {"queued": data["queued"], "retrying": len(data["retrying"]), "dead": data["dead"],
            "delivered_today": data["delivered_today"]}
