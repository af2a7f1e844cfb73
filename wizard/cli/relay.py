"""`mailwizard relay`: the local SMTP relay (``wizard.relay``) and its queue."""

from __future__ import annotations

import json
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, load_config


def add_parser(subparsers, common_parent):
    p = subparsers.add_parser(
        "relay", parents=[common_parent], help="local SMTP relay: any system mails through Exchange Online over OAuth",
        description="Run the local SMTP relay in the foreground (no sub-command): a business system sends with "
                    "AUTH PLAIN/LOGIN and a relay password to [relay] listen (default 127.0.0.1:2525); each "
                    "accepted message is fsynced in the spool before the 250 and delivered upstream with the "
                    "config's sign-in: exactly once over Graph ([outgoing] protocol = \"graph\") or EWS (while "
                    "Exchange Online keeps it: see `relay status`), at least once over SMTP XOAUTH2. With "
                    "[incoming] protocol = \"imap\", a system reads its client's mailbox with the same password "
                    "over IMAP ([relay] imap_listen, default 127.0.0.1:1143) or POP3 "
                    "([relay] pop3_listen, e.g. 127.0.0.1:1110; off by default). One log line per message or "
                    "login to stderr; SIGTERM drains, SIGHUP reloads.",
        epilog="exit codes: 0 ok, 1 failed (cannot listen, no such message), 2 usage or config error.")
    sub = p.add_subparsers(dest="relay_command", metavar="{status,queue,add-client}")
    s = sub.add_parser("status", parents=[common_parent], help="queued, retrying (with the next attempt), dead, delivered today")
    s.add_argument("--json", action="store_true", help="one JSON object: queued, retrying, dead, delivered_today")
    q = sub.add_parser("queue", parents=[common_parent], help="list the queue, retry or drop a message (safe while the relay runs)")
    q.add_argument("action", choices=("list", "retry", "drop"))
    q.add_argument("id", nargs="?", help="the message ID (retry, drop); a unique prefix will do")
    q.add_argument("--json", action="store_true", help="list: JSON")
    a = sub.add_parser("add-client", parents=[common_parent], help="add a client; prints its generated password once",
                       description="Add a [[relay.clients]] entry. Prints one line `password: <generated>`: the "
                                   "config keeps only its scrypt hash, so note it now. A running relay picks the "
                                   "client up on SIGHUP (systemctl reload) or at its next start.")
    a.add_argument("name", help="the SMTP user name the system logs in with")
    a.add_argument("--from", dest="senders", action="append", required=True, metavar="ADDR",
                   help="an address the client may send from (envelope and header From); repeat for more")
    a.add_argument("--mailbox", metavar="ADDR", help="the mailbox its IMAP/POP3 logins open (default: first --from)")
    return p


def run(args) -> int:
    what = getattr(args, "relay_command", None)
    strict = what in (None, "add-client")
    path, cfg = load_config(args, "relay", strict=strict)
    if cfg is None:
        return EXIT_USAGE
    if what == "add-client":
        return _add_client(args, path, cfg)
    from wizard.config.relay import Relay
    relay = cfg.relay or Relay()
    if what is None:
        return _serve(args, path, cfg)
    from wizard.relay.spool import Spool
    spool = Spool(relay.spool_path())
    if not spool.root.is_dir():
        spool = None
    if what == "status":
        return _status(spool, relay, cfg, args.json)
    return _queue(spool, args)


def _serve(args, path, cfg) -> int:
    from wizard.config.files import load
    from wizard.relay.daemon import check_ready, run as serve
    problem = check_ready(cfg)
    if problem:
        print(f"mailwizard relay: {problem}", file=sys.stderr)
        return EXIT_USAGE
    return serve(cfg, lambda: load(path))


def _status(spool, relay, cfg, as_json: bool) -> int:
    from wizard.relay.status import status, upstream_warning
    data = status(spool, cfg.outgoing.protocol, warning=upstream_warning(cfg), root=relay.spool_path())
    if as_json:
        print(json.dumps(data))
        return EXIT_OK
    print(f"spool: {data['spool']}")
    print(f"queued: {data['queued']}   retrying: {len(data['retrying'])}   dead: {data['dead']}   "
          f"delivered today: {data['delivered_today']}")
    if data.get("delivery"):
        print(f"delivery: {data['delivery']}")
    if data.get("warning"):
        print(f"warning: {data['warning']}")
    for r in data["retrying"]:
        print(f"  retrying {r['id']}  next attempt {r['next_attempt']}  ({r['attempts']} tried): {r['last_error']}")
    for r in data["queued_messages"]:
        if r.get("next_attempt"):
            print(f"  paced {r['id']}  next attempt {r['next_attempt']}: the mailbox is at Exchange Online's "
                  "sending limit (30 messages a minute, 10,000 recipients a day)")
    for r in data["dead_messages"]:
        print(f"  dead {r['id']}  {r['from']} -> {', '.join(r['to'])}: {r['last_error']}")
    return EXIT_OK


def _queue_state(folder: str, j: dict) -> str:
    """'queued', 'retrying, next 14:05:09', 'paced (sending limit), next ...', 'sending' (a draft on its way)
    or 'dead', from a message's journal."""
    if folder == "dead":
        return "dead"
    if j.get("state") in ("drafted", "sending"):
        return j["state"]
    from datetime import datetime
    import time
    when = float(j.get("next_attempt") or 0)
    if j.get("attempts"):
        return f"retrying, next {datetime.fromtimestamp(when).astimezone():%H:%M:%S}"
    if when > time.time():
        return f"paced (sending limit), next {datetime.fromtimestamp(when).astimezone():%H:%M:%S}"
    return "queued"


def _queue(spool, args) -> int:
    if args.action == "list":
        from wizard.relay.status import _row
        found = [] if spool is None else [("queue", j) for j in spool.journals()] + \
            [("dead", j) for j in spool.journals("dead")]
        rows = [dict(_row(j), folder=folder) for folder, j in found]
        if args.json:
            print(json.dumps(rows))
        elif not rows:
            print("the queue is empty")
        for r, (folder, j) in zip(rows, found) if not args.json else ():
            print(f"{r['id']}  {_queue_state(folder, j)}  {r['attempts']} tried  {r['from']} -> "
                  f"{', '.join(r['to'])}  {r['size']} bytes" + (f"  ({r['last_error']})" if r["last_error"] else ""))
        return EXIT_OK
    if not args.id:
        print(f"mailwizard relay queue {args.action}: give the message ID (see `mailwizard relay queue list`)",
              file=sys.stderr)
        return EXIT_USAGE
    found = spool.find(args.id) if spool else None
    if found is None:
        print(f"mailwizard relay queue {args.action}: no message {args.id!r} in the queue or the dead-letter folder",
              file=sys.stderr)
        return EXIT_FAIL
    where, mid = found.split(":", 1)
    if args.action == "retry":
        if not spool.retry(mid):
            print(f"mailwizard relay queue retry: {mid} has no message file left in {spool.dead} (only its "
                  f"journal): nothing to send again; `mailwizard relay queue drop {mid}` removes it",
                  file=sys.stderr)
            return EXIT_FAIL
        print(f"{mid}: due now" + (" (back from the dead-letter folder)" if where == "dead" else ""))
    else:
        spool.drop(mid)
        print(f"{mid}: dropped")
    return EXIT_OK


def _add_client(args, path, cfg) -> int:
    """Added to the file as it is when written (under its lock): two add-clients at once, or one beside
    `rotate` or an editor, keep each other's changes."""
    from wizard.config.files import WriteError, update
    from wizard.config.schema import ConfigError
    from wizard.relay.clients import ClientError, add_client

    def add(now):
        return add_client(now, args.name, args.senders, args.mailbox or ""), now.relay.listen
    try:
        password, listen = update(path, add)
    except ClientError as exc:
        where = f" in {path}" if "already exists" in str(exc) else ""
        print(f"mailwizard relay add-client: {exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"mailwizard relay add-client: the config was not changed: {exc.render()}", file=sys.stderr)
        return EXIT_USAGE
    except WriteError as exc:
        print(f"mailwizard relay add-client: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"password: {password}", flush=True)
    print(f"client {args.name} added to {path}; SMTP settings: server {listen}, user {args.name}, "
          "AUTH PLAIN or LOGIN. A running relay picks it up on SIGHUP.", file=sys.stderr)
    return EXIT_OK
