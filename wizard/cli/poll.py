"""`mailwizard poll`: read the incoming accounts with the saved config, every
``[incoming] poll_minutes`` (or once), and log what arrived: one line per
message, or JSON lines. Fetched mail is marked processed (read, moved to
"Processed") unless --peek."""

from __future__ import annotations

import json
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE


def add_parser(subparsers, common_parent):
    p = subparsers.add_parser(
        "poll", parents=[common_parent], help="fetch new mail of the incoming accounts (every poll_minutes)",
        description="Fetch the unread inbox mail of every [[incoming.accounts]] over [incoming] protocol (ews, "
                    "graph or imap), concurrently; log one line per message and mark it processed (read and "
                    "moved to the 'Processed' folder) so it is not read twice. Repeats every [incoming] "
                    "poll_minutes until Ctrl-C, or runs once with --once. One account's failure is reported "
                    "and does not stop the others.",
        epilog="exit codes (--once): 0 every account read, 1 an account failed, 2 usage or config error.\n"
               "--json prints JSON lines: {\"account\", \"id\", \"from\", \"to\", \"subject\", \"received\", "
               "\"attachments\"} per message and {\"account\", \"error\": {\"code\", \"cause\", \"fix\"}} per failure.")
    p.add_argument("--once", action="store_true", help="poll once and exit")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--peek", action="store_true", help="leave the mail unread where it is")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N messages per account and poll")
    return p


def _emit(results, as_json: bool, secrets) -> bool:
    from wizard.cli.output import scrub
    ok = True
    for r in results:
        if r.diagnosis is not None:
            ok = False
            d = r.diagnosis
            if as_json:
                line = json.dumps({"account": r.address, "error": {"code": d.code, "cause": d.cause, "fix": d.fix}})
                print(scrub(line, secrets), flush=True)
            else:
                print(scrub(f"{r.address}: FAILED {d.code}: {d.cause}\n  fix: {d.fix}", secrets),
                      file=sys.stderr, flush=True)
            continue
        for m in r.messages:
            if as_json:
                print(scrub(json.dumps(m.to_json()), secrets), flush=True)
            else:
                when = m.received.strftime("%Y-%m-%d %H:%M:%SZ") if m.received else "-"
                atts = f"  [{len(m.attachments)} attachment(s)]" if m.attachments else ""
                print(scrub(f"{when}  {r.address}  from {m.sender}: {m.subject}{atts}", secrets), flush=True)
        if not as_json and not r.messages:
            print(f"{r.address}: no new mail", flush=True)
    return ok


def run(args, *, sleep=None) -> int:
    from wizard.cli.common import sign_in_prompt
    from wizard.config.schema import secrets_of
    from wizard.runtime import Mailer, MailError
    from wizard.runtime.poll import poll_forever, poll_once

    if args.limit < 1:
        print("mailwizard poll: --limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        mailer = Mailer.from_config(getattr(args, "config", None), prompt=sign_in_prompt())
    except MailError as exc:
        print(f"mailwizard poll: config error\n{exc.diagnosis.cause}", file=sys.stderr)
        return EXIT_USAGE
    cfg = mailer.cfg
    if not cfg.incoming.accounts:
        print("mailwizard poll: no [[incoming.accounts]] in the config: nothing to poll", file=sys.stderr)
        return EXIT_USAGE
    secrets = secrets_of(cfg)
    with mailer:
        if args.once:
            results = poll_once(mailer, limit=args.limit, mark=not args.peek)
            return EXIT_OK if _emit(results, args.json, secrets) else EXIT_FAIL
        if not args.json:
            print(f"polling {len(cfg.incoming.accounts)} account(s) every {cfg.incoming.poll_minutes} minute(s) "
                  f"over {cfg.incoming.protocol}; Ctrl-C to stop", flush=True)
        poll_forever(mailer, limit=args.limit, mark=not args.peek, sleep=sleep,
                     on_results=lambda results: _emit(results, args.json, secrets))
    return EXIT_OK
