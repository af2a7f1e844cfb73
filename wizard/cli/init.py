"""`mailwizard init`: create a config from flags, environment variables or an
answers file, test it, and write it only when the test passed.

  mailwizard init --non-interactive --flow client_secret \\
      --tenant-id 5f8d... --client-id 3f6a... --client-secret-env ERP_SECRET \\
      --sender erp@contoso.com [--account orders@contoso.com ...] [--json]

Exit codes as `check`: 0 the test passed and the config was written, 1 a test
step failed (nothing written unless --save-anyway), 2 usage or config error.

This module imports only argparse/os/sys at import time (the parser is built
for every `mailwizard --help`).
"""

from __future__ import annotations

import argparse
import json
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE

DESCRIPTION = """\
Create the config without the wizard (for scripts, Ansible, images): every
value from flags, MAILWIZARD_* environment variables or an answers file
(TOML, same shape as the config). Runs the connection test and writes the
config (mode 0600) only when it passed."""

EPILOG = """\
precedence: flags > environment > answers file > existing config > defaults.

secrets: never as plain flag values (shell history, `ps`). Use
  --client-secret-env NAME / --client-secret-file FILE, $MAILWIZARD_CLIENT_SECRET,
  --password-env NAME / --password-file FILE, $MAILWIZARD_PASSWORD, or the answers file.
  With --keep-references the config stores "env:NAME" / "file:PATH", not the value.

environment: MAILWIZARD_SYSTEM, _FLOW, _PROTOCOL, _CLOUD, _TENANT_ID, _CLIENT_ID,
  _CLIENT_SECRET, _SECRET_EXPIRES, _USERNAME, _PASSWORD, _CERTIFICATE, _THUMBPRINT,
  _SERVER, _PORT, _INCOMING_SERVER, _INCOMING_PORT, _SENDER, _TEST_RECIPIENT,
  _POLL_MINUTES, _ACCOUNTS (comma separated), _AUTHORITY, _CA_BUNDLE.

protocol: ews unless --protocol (the wizard preselects smtp+imap for efecte_esm and graph
  for generic; init warns). Efecte ESM reads the service account's own mailbox unless --account.
--account replaces the incoming accounts of an existing config (a warning names them).

exit codes: 0 test passed and config written, 1 a test step failed (nothing
written unless --save-anyway), 2 usage or config error (the field is named), or
the file could not be written, or it changed while the test ran (--overwrite).
Kept too: <name>.good (the last that passed), <name>.bak (the previous file).
--json prints the same single JSON object as `check --json`."""


def add_parser(sub, common) -> argparse.ArgumentParser:
    """Register `init` on the sub-parsers of `mailwizard`."""
    i = sub.add_parser("init", parents=[common], help="create the config from flags, environment or an answers file, test it, save it",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("--non-interactive", action="store_true",
                   help="take every value from flags, environment and --answers; never prompt")
    i.add_argument("--answers", metavar="FILE", help="answers file: TOML in the same shape as the config")
    v = i.add_argument_group("values")
    v.add_argument("--system", metavar="NAME", help="monitor_g5 | efecte_esm | generic")
    v.add_argument("--flow", metavar="FLOW", help="client_secret | password | certificate | device_code")
    v.add_argument("--protocol", metavar="NAME",
                   help="ews | graph | smtp+imap (outgoing + incoming; default ews)")
    v.add_argument("--cloud", metavar="NAME", help="global | usgov | usgov-dod | china")
    v.add_argument("--tenant-id", metavar="ID", help="Directory (tenant) ID: GUID (any grouping) or verified domain")
    v.add_argument("--client-id", metavar="ID", help="Application (client) ID")
    cs = v.add_mutually_exclusive_group()
    cs.add_argument("--client-secret-env", metavar="NAME", help="read the client secret Value from environment variable NAME")
    cs.add_argument("--client-secret-file", metavar="FILE", help="read the client secret Value from FILE")
    cs.add_argument("--client-secret", metavar="VALUE", help=argparse.SUPPRESS)   # discouraged: warns
    v.add_argument("--secret-expires", metavar="YYYY-MM-DD", help="the secret's expiry date (Expires column)")
    v.add_argument("--username", metavar="UPN", help="service account (password and device code flows)")
    pw = v.add_mutually_exclusive_group()
    pw.add_argument("--password-env", metavar="NAME", help="read the password from environment variable NAME")
    pw.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    pw.add_argument("--password", metavar="VALUE", help=argparse.SUPPRESS)        # discouraged: warns
    v.add_argument("--certificate", metavar="PEM", help="private key + certificate file (certificate flow)")
    v.add_argument("--thumbprint", metavar="HEX", help="the certificate's SHA-1 thumbprint (certificate flow)")
    v.add_argument("--server", metavar="HOST",
                   help="outgoing server: EWS (default outlook.office365.com) or SMTP (default smtp.office365.com); "
                        "Graph has none")
    v.add_argument("--port", metavar="PORT", help="outgoing port (default 443 EWS, 587 SMTP)")
    v.add_argument("--incoming-server", metavar="HOST",
                   help="incoming server: IMAP (default outlook.office365.com), or EWS when not the outgoing one")
    v.add_argument("--incoming-port", metavar="PORT", help="incoming port (default 993 IMAP, 443 EWS)")
    v.add_argument("--sender", metavar="ADDRESS", help="sender mailbox")
    v.add_argument("--test-recipient", metavar="ADDRESS", help="test recipient kept in the config")
    v.add_argument("--poll-minutes", metavar="N", help="incoming polling interval")
    v.add_argument("--account", metavar="ADDRESS", action="append", help="incoming mailbox (repeat for several)")
    v.add_argument("--authority", metavar="URL", help="identity platform override (sovereign clouds, test tenants)")
    v.add_argument("--ca-bundle", metavar="PEM", help="CA certificates to trust (TLS-inspecting proxies)")
    o = i.add_argument_group("behaviour")
    o.add_argument("--keep-references", action="store_true",
                   help="store secrets given by env/file as env:NAME / file:PATH instead of the value")
    o.add_argument("--save-anyway", action="store_true", help="write the config even when the test failed (exit code stays 1)")
    o.add_argument("--overwrite", action="store_true",
                   help="write even when the config file changed while the test ran (another mailwizard or an editor)")
    o.add_argument("--send-to", metavar="ADDRESS", help="also send a marked test message to ADDRESS")
    o.add_argument("--json", action="store_true", help="print one JSON object (as `check --json`) instead of the tree")
    return i


VALUE_DESTS = ("answers", "system", "flow", "protocol", "cloud", "tenant_id", "client_id", "client_secret_env",
               "client_secret_file", "client_secret", "secret_expires", "username", "password_env", "password_file",
               "password", "certificate", "thumbprint", "server", "port", "incoming_server", "incoming_port",
               "sender", "test_recipient", "poll_minutes", "account", "authority", "ca_bundle",
               "keep_references", "save_anyway", "overwrite", "send_to", "json")


def _failure_json(message: str) -> str:
    from wizard.cli.check import _config_failure
    return json.dumps(_config_failure(message))


def _config_and_profile(args) -> str | None:
    """--config and --profile naming two different files: the message (one must go)."""
    profile = getattr(args, "profile", None)
    if not profile or not args.config:
        return None
    from pathlib import Path
    from wizard.config.schema import ConfigError
    from wizard.config.files import profile_path
    try:
        named = profile_path(profile)
    except ConfigError:
        return None             # `mailwizard` reports a bad profile name itself
    if Path(args.config).expanduser().absolute() == named.absolute():
        return None
    return (f"--config {args.config} and --profile {profile} ({named}) name two different configs: "
            "give one of them")


def run(args) -> int:
    both = _config_and_profile(args)
    if both:
        if getattr(args, "json", False):
            return _usage_error(args, both)
        print(f"mailwizard init: {both}", file=sys.stderr)
        return EXIT_USAGE
    if not args.non_interactive:
        given = [d for d in VALUE_DESTS if getattr(args, d, None) not in (None, False, [])]
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            print("mailwizard init: the wizard needs an interactive terminal. For scripts add --non-interactive "
                  "and give the values as flags, MAILWIZARD_* variables or --answers FILE "
                  "(see `mailwizard init --help`).", file=sys.stderr)
            return EXIT_USAGE
        if given:
            print(f"mailwizard init: --{given[0].replace('_', '-')} is used with --non-interactive; "
                  "add it, or run `mailwizard init` alone for the guided wizard.", file=sys.stderr)
            return EXIT_USAGE
        from wizard.cli import tui  # the guided wizard, as `mailwizard` alone
        return tui.run(args)
    return run_non_interactive(args)


def run_non_interactive(args, env: dict | None = None) -> int:
    from wizard.cli.answers import AnswerError, gather
    from wizard.config.schema import secrets_of
    from wizard.config.files import load_lenient, resolve_path
    from wizard.cli.output import SYMBOLS, scrub, use_colour

    path = resolve_path(args.config)
    err = sys.stderr
    if path.is_dir():       # found now, not after the whole connection test
        return _usage_error(args, f"{path} is a folder: give the config file's path (e.g. {path / 'mailwizard.toml'})")
    from wizard.config.files import fingerprint
    seen = fingerprint(path) if not path.is_dir() else None    # to notice another writer meanwhile
    existing, _problems, fatal = load_lenient(path)
    try:
        answers = gather(args, base=existing, env=env, keep_references=args.keep_references)
    except AnswerError as exc:
        return _usage_error(args, exc.render())
    cfg = answers.cfg
    secrets = list(answers.secrets) + secrets_of(cfg)

    def say(text: str) -> None:
        print(scrub(text, secrets), file=err)

    if fatal:
        say(f"note: the existing {path} could not be read, so it was not used; it is kept as {path.name}.bak "
            f"if this run writes the config. ({fatal.splitlines()[0]})")
    for note in answers.notes:
        say(f"note: {note}")
    warnings = list(answers.warnings)      # said after the test, but not the one its config step shows

    send_to = None
    if args.send_to is not None:     # given empty (an unset shell variable) is an error, not "don't send"
        from wizard.config.fields import check_email
        checked = check_email(args.send_to, "--send-to")
        if not checked.ok:
            return _usage_error(args, checked.error, secrets)
        send_to = checked.value

    from wizard.cli import check as cli_check
    from wizard.check import engine as conntest

    # the same bounds ($MAILWIZARD_TIMEOUT, $MAILWIZARD_MAX_WAIT) and JSON shape as `check`
    tuning = None
    from_env = getattr(getattr(conntest, "Tuning", None), "from_env", None)
    if from_env is not None:
        try:
            tuning = from_env()
        except ValueError as exc:
            return _usage_error(args, str(exc), secrets)
    public_json = getattr(cli_check, "public_json", lambda r: r.to_json())

    colour = use_colour() and not args.json
    live = None
    if not args.json and sys.stdout.isatty():
        def live(step):
            if step.status == "running":
                text = scrub(f"  {SYMBOLS['running']} {step.title} ...", secrets)
                print(f"{text[:78]:<78}", end="\r", flush=True)
    report = conntest.run_check(cfg, send_to=send_to, on_step=live, tuning=tuning)
    if live is not None:
        print(" " * 78, end="\r", flush=True)
    for warning in warnings:
        if not _shown_by_check(warning, report):
            say(f"warning: {warning}")
    data = public_json(report)
    ok = bool(data["ok"])
    try:
        from wizard.cli.support import record_check
        record_check(data | {"details": [dict(id=s.id, **s.details) for s in report.steps if s.details]},
                     str(path), secrets)
    except Exception:   # the record is a convenience for `report`; never fail init over it
        pass

    if args.json:
        print(scrub(json.dumps(data), secrets))
    else:
        tree = cli_check.render_tree(report, str(path), colour)
        tree = tree.replace("mailwizard check  ", "mailwizard init  ", 1)
        print(scrub(tree, secrets))

    if ok or args.save_anyway:
        from wizard.config.files import ANY, ConfigChanged, save
        from wizard.config.drafts import discard_draft
        try:
            written = save(cfg, path, tested=ok, expect=ANY if args.overwrite else seen)
        except ConfigChanged:
            say(f"mailwizard init: not written: {path} changed while the test ran (another mailwizard or an "
                "editor wrote it). Look at it, then run again, or add --overwrite to replace it.")
            return EXIT_USAGE
        except OSError as exc:
            say(f"mailwizard init: cannot write {path}: {exc.strerror or exc}")
            return EXIT_USAGE
        discard_draft(written)
        how = "" if ok else " although the test failed (--save-anyway)"
        literal = [n for n, v in (("client secret", cfg.auth.client_secret), ("password", cfg.auth.password))
                   if v and not v.startswith(("env:", "file:"))]
        held = f"; it holds the {' and '.join(literal)} (mode 0600)" if literal else " (mode 0600)"
        say(f"Wrote {written}{how}{held}. Test it again any time with `mailwizard check --config {written}`.")
    else:
        say(f"Not written: the test failed. Fix the value named above and run again, "
            f"or add --save-anyway to write {path} regardless.")
    return EXIT_OK if ok else EXIT_FAIL


def _shown_by_check(warning: str, report) -> bool:
    """A "[field] ..." warning that the test's config step already shows (it
    names the same field), so init does not print it twice."""
    if not warning.startswith("["):
        return False
    fld = warning[1:].split("]", 1)[0]
    for step in report.steps:
        if step.id == "config" and step.status == "warn":
            return step.summary.startswith(f"{fld}: ") or (
                step.code == "secret.expiring" and fld == "auth.secret_expires")
    return False


def _usage_error(args, message: str, secrets=()) -> int:
    from wizard.cli.output import scrub
    if args.json:
        print(scrub(_failure_json(message), secrets))
    else:
        print(scrub(f"mailwizard init: config error\n{message}", secrets), file=sys.stderr)
    return EXIT_USAGE
