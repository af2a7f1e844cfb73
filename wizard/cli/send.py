"""`mailwizard send`: send one message with the saved config (the runtime's
``Mailer.send``), for scripts and cron jobs."""

from __future__ import annotations

import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE


def add_parser(subparsers, common_parent):
    p = subparsers.add_parser(
        "send", parents=[common_parent], help="send a message with the saved config",
        description="Send one message over the protocol in [outgoing] protocol (ews, graph or smtp), with the "
                    "config's sign-in, or a [[users]] entry's own sign-in with --from NAME. Waits rather than "
                    "fails to stay under 30 messages a minute per mailbox.",
        epilog="exit codes: 0 sent, 1 the service refused or could not be reached, 2 usage or config error.")
    p.add_argument("--to", action="append", required=True, metavar="ADDRESS",
                   help="recipient (repeat, or separate with commas)")
    p.add_argument("--cc", action="append", metavar="ADDRESS", help="copy recipient (repeatable)")
    p.add_argument("--subject", required=True, help="the subject line")
    p.add_argument("--body-file", metavar="FILE", help="plain-text body from FILE ('-' reads standard input)")
    p.add_argument("--attach", action="append", default=[], metavar="FILE", help="attach FILE (repeatable)")
    p.add_argument("--from", dest="sender", metavar="USER",
                   help="a [[users]] name (e.g. WEBSHOP) to send with that user's sign-in, or a sender address")
    return p


def _fail(diag, secrets, code: int) -> int:
    from wizard.cli.output import scrub
    if diag.code == "config.invalid" and diag.service_message:   # a local problem, no service involved
        print(scrub(f"mailwizard send: {diag.service_message}", secrets), file=sys.stderr)
        return code
    text = f"mailwizard send: {diag.code}: {diag.cause}\n  fix: {diag.fix}"
    if diag.service_message:
        text += f"\n  service said: {diag.service_message}"
    print(scrub(text, secrets), file=sys.stderr)
    return code


def run(args) -> int:
    from wizard.cli.common import sign_in_prompt
    from wizard.config.schema import secrets_of
    from wizard.config.fields import check_email
    from wizard.runtime import Attachment, Mailer, MailError
    from wizard.runtime.model import recipients

    if not recipients(args.to):
        print("mailwizard send: --to is empty: give at least one recipient address", file=sys.stderr)
        return EXIT_USAGE
    for address in recipients(args.to) + recipients(args.cc):
        checked = check_email(address, "--to/--cc")
        if not checked.ok:
            print(f"mailwizard send: {checked.error}", file=sys.stderr)
            return EXIT_USAGE
    body = ""
    try:
        if args.body_file == "-":
            body = sys.stdin.read()
        elif args.body_file:
            with open(args.body_file, encoding="utf-8") as fh:
                body = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or exc)
        print(f"mailwizard send: --body-file {args.body_file}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    try:
        files = [Attachment.from_path(p) for p in args.attach]
    except MailError as exc:    # the message is "<path>: <reason>"
        print(f"mailwizard send: --attach {exc.diagnosis.service_message}", file=sys.stderr)
        return EXIT_USAGE
    try:
        mailer = Mailer.from_config(getattr(args, "config", None), prompt=sign_in_prompt())
    except MailError as exc:
        return _fail(exc.diagnosis, [], EXIT_USAGE)
    secrets = secrets_of(mailer.cfg)
    try:
        with mailer:
            mailer.send(recipients(args.to), args.subject, body, cc=recipients(args.cc), attachments=files,
                        sender=args.sender)
    except MailError as exc:
        return _fail(exc.diagnosis, secrets, EXIT_USAGE if exc.code == "config.invalid" else EXIT_FAIL)
    sender = args.sender or mailer.cfg.outgoing.sender
    print(f"sent \"{args.subject}\" from {sender} to {', '.join(recipients(args.to) + recipients(args.cc))} "
          f"over {mailer.cfg.outgoing.protocol}" + (f" with {len(files)} attachment(s)" if files else ""))
    return EXIT_OK
