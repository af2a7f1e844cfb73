"""What `mailwizard relay status` and `relay queue list` show, read from the spool (no daemon needed)."""

from __future__ import annotations

import contextlib
import time
from datetime import date, datetime


def _iso(ts) -> str | None:
    return datetime.fromtimestamp(float(ts)).astimezone().isoformat(timespec="seconds") if ts else None


def _row(j: dict) -> dict:
    return {"id": j.get("id"), "client": j.get("client"), "from": j.get("sender"), "to": j.get("rcpts") or [],
            "size": j.get("size"), "received": _iso(j.get("received")), "attempts": j.get("attempts", 0),
            "state": j.get("state"), "last_error": j.get("last_error") or None, "dsn": bool(j.get("dsn"))}


GRAPH_INSTEAD = ("Set [outgoing] protocol = \"graph\" (Microsoft Graph Mail.Send and Mail.ReadWrite) and the relay "
                 "keeps delivering, exactly once.")


def upstream_warning(cfg, today: date | None = None) -> str:
    """What the relay says at its start and in `relay status` about its upstream: "" unless it delivers over EWS
    to Exchange Online, which is retiring EWS (the guide's dates and words, ``wizard.guide.steps``)."""
    if cfg.outgoing.protocol != "ews" or cfg.microsoft.exchange == "on_premises":
        return ""
    from wizard.guide.steps import ews_warning
    return f"{ews_warning(today or date.today())} {GRAPH_INSTEAD}"


def ews_shut_down(cfg, today: date | None = None) -> bool:
    """True when the relay would deliver over EWS to Exchange Online after EWS was switched off for good."""
    if cfg.outgoing.protocol != "ews" or cfg.microsoft.exchange == "on_premises":
        return False
    from wizard.guide.steps import load_guide
    return load_guide().ews_retirement.phase(today or date.today()) == "after"


def status(spool, protocol: str, now: float | None = None, warning: str = "", root=None) -> dict:
    """What `relay status` shows. ``spool`` None: the relay never ran here (all 0, the spool it will
    use is ``root``). Read under the spool's lock (the one delivery and `relay queue retry|drop` take):
    a message moving between folders meanwhile is counted once. Without write access, read unlocked."""
    with contextlib.ExitStack() as stack:
        if spool is not None:
            try:
                stack.enter_context(spool.locked())
            except OSError:
                pass
        data = _read(spool, protocol, now, root)
    if warning:
        data["warning"] = warning
    return data


def _read(spool, protocol: str, now: float | None, root) -> dict:
    now = now or time.time()
    journals = spool.journals if spool is not None else (lambda where="queue": [])
    queued, retrying = [], []
    twice = spool.cut_short() if spool is not None else {}   # a crash between two folders: count it where its truth is
    for j in journals():
        if twice.get(j.get("id"), "queue") != "queue":
            continue
        if int(j.get("attempts") or 0) > 0:
            retrying.append({**_row(j), "next_attempt": _iso(max(float(j.get("next_attempt") or 0), now))})
        elif float(j.get("next_attempt") or 0) > now:    # held by the pacer (Exchange's sending limits)
            queued.append({**_row(j), "next_attempt": _iso(j.get("next_attempt"))})
        else:
            queued.append(_row(j))
    dead = [{**_row(j), "dead_at": _iso(j.get("dead_at"))} for j in journals("dead")
            if twice.get(j.get("id"), "dead") == "dead"]
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    delivered = sum(1 for j in journals("done") if float(j.get("delivered_at") or 0) >= midnight)
    return {"queued": len(queued), "retrying": retrying, "dead": len(dead), "delivered_today": delivered,
            "queued_messages": queued, "dead_messages": dead, "spool": str(spool.root if spool is not None else root),
            "protocol": protocol, "delivery": guarantee(protocol)}


def guarantee(protocol: str) -> str:
    if protocol in ("graph", "ews"):
        return f"exactly once ({'Graph' if protocol == 'graph' else 'EWS'}: draft, then send)"
    return "at least once (SMTP upstream: a crash after the server's 250 sends it again)"


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
