"""`mailwizard rotate`: replace the client secret, testing the new one first.

exit codes: 0 the new secret passed and replaced the old one; 1 the new secret
failed the test (config unchanged); 2 usage or config error (nothing tested);
3 the new secret passed but could not be saved (disk full, no permission, the
file changed meanwhile): the old secret is still the one in use.
"""

from __future__ import annotations

import os
import sys
from datetime import date

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE

EXIT_NOT_SAVED = 3      # rotate only: the new secret passed, saving it failed


def add_parser(sub, common) -> None:
    r = sub.add_parser(
        "rotate", parents=[common], help="replace the client secret, testing the new one before the old one goes",
        description="Walk through creating a new client secret (Azure steps 20-22), test it with the full "
                    "connection test on a copy of the config, and only then save it (the previous file is "
                    "kept as .bak). The old secret keeps working until the new one has passed.",
        epilog="exit codes: 0 replaced, 1 the new secret failed (config unchanged), 2 usage or config error, "
               "3 the new secret passed but could not be saved (the old one is still in use: keep it). "
               "Without a terminal, give the Value with --secret-file or --secret-env and the date with --expires.")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--secret-file", metavar="FILE", help="read the new secret's Value from FILE")
    src.add_argument("--secret-env", metavar="NAME", help="read the new secret's Value from environment variable NAME")
    r.add_argument("--expires", metavar="YYYY-MM-DD", help="the new secret's Expires date from the portal")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _read_value(args, current: str | None) -> str:
    """The new Value from --secret-file / --secret-env / the terminal (no echo)."""
    from wizard.check.rotate import RotateError, check_new_secret
    if args.secret_file:
        try:
            raw = open(os.path.expanduser(args.secret_file), encoding="utf-8").read()
        except OSError as exc:
            raise RotateError(f"--secret-file {args.secret_file}: {exc.strerror or exc}") from None
        value, error = check_new_secret(raw, current)
    elif args.secret_env:
        if args.secret_env not in os.environ:
            raise RotateError(f"--secret-env {args.secret_env}: the variable is not set")
        value, error = check_new_secret(os.environ[args.secret_env], current)
    elif _interactive():
        import getpass
        for _ in range(3):
            raw = getpass.getpass("New secret Value (not shown as you paste): ")
            value, error = check_new_secret(raw, current)
            if not error:
                return value
            print(f"  {error}", file=sys.stderr)
        raise RotateError("no valid secret Value given")
    else:
        raise RotateError("no terminal to ask for the new secret: use --secret-file FILE or --secret-env NAME")
    if error:
        raise RotateError(error)
    return value


def _read_expiry(args, today: date) -> date:
    from wizard.check.rotate import RotateError, check_expiry
    if args.expires:
        when, error, warning = check_expiry(args.expires, today)
        if error:
            raise RotateError(f"--expires: {error}")
    elif _interactive():
        for _ in range(3):
            raw = input("Its Expires date, as shown in the portal (YYYY-MM-DD): ")
            when, error, warning = check_expiry(raw, today)
            if not error and when is not None:
                break
            print(f"  {error or 'Give the date from the Expires column.'}", file=sys.stderr)
        else:
            raise RotateError("no valid Expires date given")
    else:
        raise RotateError("no terminal to ask for the Expires date: use --expires YYYY-MM-DD")
    if when is None:
        raise RotateError("--expires: give the date from the Expires column")
    if warning:
        print(f"note: {warning}", file=sys.stderr)
    return when


def run(args, today: date | None = None) -> int:
    from wizard.cli.check import render_tree
    from wizard.cli.common import load_config
    from wizard.config.schema import secrets_of
    from wizard.config.fields import mask_secret
    from wizard.cli.output import SYMBOLS, scrub, use_colour
    from wizard.check.rotate import (NotSaved, RotateError, current_secret, old_secret_reminder, portal_steps, preflight,
                         rotate_secret)

    today = today or date.today()
    path, cfg = load_config(args, "rotate", strict=True)
    if cfg is None:
        return EXIT_USAGE
    old = current_secret(cfg)
    old_expires = cfg.auth.secret_expires
    try:
        preflight(cfg)
        print(f"Rotating the client secret of app {cfg.microsoft.client_id} ({path}).")
        if old_expires:
            print(f"The current secret ({mask_secret(old)}) expires {old_expires.isoformat()}.")
        print("In the Azure portal, on the app registration (the current secret keeps working meanwhile):")
        for line in portal_steps():
            print(f"  {line}")
        print()
        new = _read_value(args, old)
        expires = _read_expiry(args, today)
    except RotateError as exc:
        print(f"mailwizard rotate: {exc}", file=sys.stderr)
        return EXIT_USAGE

    secrets = set(secrets_of(cfg)) | {new}
    live = None
    if sys.stdout.isatty():
        def live(step):
            if step.status == "running":
                print(f"  {SYMBOLS['running']} {step.title} ...", end="\r", flush=True)
    print(f"Testing the new secret ({mask_secret(new)}, expires {expires.isoformat()}) before replacing the old one ...")
    try:
        result = rotate_secret(cfg, path, new, expires, today=today, on_step=live)
    except RotateError as exc:
        print(f"mailwizard rotate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotSaved as exc:
        print(scrub(render_tree(exc.report, str(path), use_colour()), secrets))
        print(f"mailwizard rotate: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_NOT_SAVED
    print(scrub(render_tree(result.report, str(path), use_colour()), secrets))
    if not result.ok:
        print(scrub(result.message, secrets), file=sys.stderr)
        return EXIT_FAIL
    print(result.message)
    for p in result.saved:
        print(f"  wrote {p}")
    for b in result.backups:
        print(f"  previous version kept as {b} (it still holds the old secret: delete it once the old "
              "secret is deleted in the portal)")
    print(old_secret_reminder(old, old_expires))
    return EXIT_OK
