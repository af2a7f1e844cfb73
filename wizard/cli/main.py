"""The `mailwizard` command.

Sub-commands and exit codes are a public contract (scripts rely on them):
  mailwizard [wizard]   open the guided wizard (TUI)
  mailwizard demo       the wizard against the built-in sandbox tenant
  mailwizard check      run the connection test headless; exit 0 ok, 1 a step failed, 2 usage/config error
                        (--format prometheus|nagios, --textfile, --all-profiles: wizard/cli/monitoring.py)
  mailwizard show       print the config with secrets masked
  mailwizard report     write a support bundle with no secret in it
  mailwizard sandbox    serve the sandbox tenant on 127.0.0.1 for trying things by hand
  mailwizard send       send a message with the saved config; exit 0 sent, 1 failed, 2 usage/config error
  mailwizard poll       fetch new mail of the incoming accounts (--once: exit 0 ok, 1 an account failed, 2 usage)
  mailwizard export     settings sheet / admin runbook / app manifest from the config; exit 0, 1 write error, 2 usage
  mailwizard rotate     replace the client secret, tested first; exit 0 replaced, 1 new secret failed, 2 usage
  mailwizard discover   tenant ID and cloud from a domain; exit 0 found, 1 unknown/unreachable, 2 usage
  mailwizard init       --non-interactive: config from flags/env/answers file, tested, then written; exit codes as check
  mailwizard list       the default config and the profiles, secret days left, drafts
  mailwizard cert       create the key + certificate for the certificate flow; exit 0, 1 write error, 2 usage
  mailwizard login      device code sign-in, saved for check/send/poll; exit 0 signed in, 1 failed, 2 usage
  mailwizard register   register the app through Graph (one admin sign-in), write and test the config; exit 0, 1, 2
  mailwizard doctor     compare the app registration with what the config needs; exit 0 ok, 1 findings, 2 usage
  mailwizard relay      local SMTP relay to Exchange Online (status, queue, add-client); exit 0, 1 failed, 2 usage

Only argparse is imported up front: textual, msal and exchangelib are imported
by the command that needs them, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE
# What Ctrl-C leaves behind, where "nothing was written" would not be true.
INTERRUPTED = {
    "poll": "poll stopped; messages already marked processed stay so.",
    "send": "interrupted; if the message had already reached the server it may still be delivered.",
    "register": "register stopped; what it had created stays in the tenant (and in the config once written): "
                "run it again to complete it.",
}

DESCRIPTION = """\
Set up and test Microsoft 365 / Exchange Online mail over OAuth 2.0 for a
business system (Monitor ERP G5, Efecte ESM, ...). The wizard follows the
setup guide step by step, tests the connection and writes a TOML config.
"""

EPILOG = """\
config file: --config PATH, else --profile NAME, else $MAILWIZARD_CONFIG,
else $MAILWIZARD_PROFILE, else the user config directory (mailwizard.toml).
Try it without a tenant: `mailwizard demo`.

exit codes (check): 0 all passed, 1 a step failed, 2 usage or config error
(check --format nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2 with a clear line, no traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"mailwizard: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 60 (e.g. 0.5)")
    return value


def build_parser() -> argparse.ArgumentParser:
    from wizard import __version__

    config_help = "config file (default: $MAILWIZARD_CONFIG or the user config dir)"
    profile_help = "use the named profile (e.g. test, production) kept beside the default config"
    # The sub-commands' --config must not reset a --config given before the
    # sub-command, hence SUPPRESS there.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=config_help)
    common.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS, help=profile_help)

    p = _Parser(prog="mailwizard", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="PATH", help=config_help)
    p.add_argument("--profile", metavar="NAME", help=profile_help)
    p.add_argument("--version", action="version", version=f"mailwizard {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("wizard", parents=[common], help="open the guided wizard (the default)",
                   description="Open the guided wizard: choose the system and flow, follow the Azure portal steps, enter the IDs, test, save.")

    d = sub.add_parser("demo", parents=[common], help="try the wizard against the built-in sandbox tenant",
                       description="Start the built-in sandbox tenant on 127.0.0.1 (HTTPS, throwaway CA) and open the wizard against it. "
                                   "Nothing to sign up for; every screen and the failure cases can be tried. "
                                   "The config is written to a separate demo file unless --config is given.")
    d.add_argument("--latency", type=_seconds, default=0.0, metavar="SECONDS",
                   help="delay each sandbox response (to see progress during waits)")

    from wizard.cli.check import HelpFormatter as LineWrapHelp  # its line breaks kept, each line wrapped
    c = sub.add_parser("check", parents=[common], help="test the saved config headless (for scripts and cron)",
                       formatter_class=LineWrapHelp,
                       description="Run the layered connection test from this machine: config, dns, tcp, tls, token, "
                                   "claims, mailbox, [send], and each incoming account.",
                       epilog="exit codes: 0 all passed (warnings allowed), 1 a step failed, 2 usage or config error.\n"
                              "environment: MAILWIZARD_TIMEOUT=CONNECT[,READ] seconds per request (default 5,20); "
                              "MAILWIZARD_MAX_WAIT=SECONDS longest wait between retries (default: Retry-After up to 10 s; "
                              "a 403 after a new app registration is retried every 15 s for 60 s); "
                              "HTTPS_PROXY/NO_PROXY and REQUESTS_CA_BUNDLE/SSL_CERT_FILE are honoured.\n"
                              "--json prints exactly one JSON object:\n"
                              '{"ok": bool, "steps": [{"id", "status", "ms", "summary", "code", "fix"}]}')
    c.add_argument("--json", action="store_true", help="print one JSON object instead of the tree")
    c.add_argument("--send-to", metavar="ADDRESS", help="also send a marked test message to ADDRESS")
    from wizard.cli import monitoring as cli_monitoring  # argparse only at import time
    cli_monitoring.add_arguments(c)
    c.epilog += "\n" + cli_monitoring.HELP_EPILOG

    sub.add_parser("show", parents=[common], help="print the config with secrets masked, IDs grouped for reading aloud",
                   description="Print the config with secrets masked, IDs in groups of four for reading aloud, and the secret's days left.",
                   epilog="exit codes: 0 shown, 2 the file is missing or cannot be read.")

    r = sub.add_parser("report", parents=[common], help="write a support bundle (versions, masked config, last check)",
                       description="Write one text file for support: versions, platform, the config with secrets masked, "
                                   "and the last check of this config (its steps with codes and trace/correlation IDs). "
                                   "No secret, password or access token is in it.",
                       epilog="exit codes: 0 written (or printed), 2 the file cannot be written.")
    r.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: print to stdout)")

    from wizard.cli import discover as cli_discover, export as cli_export, rotate as cli_rotate  # argparse only at import time
    cli_export.add_parser(sub, common)
    cli_rotate.add_parser(sub, common)
    cli_discover.add_parser(sub, common)

    from wizard.cli import poll as cli_poll, send as cli_send  # argparse only at import: no msal / exchangelib
    cli_send.add_parser(sub, common)
    cli_poll.add_parser(sub, common)

    from wizard.cli import init as cli_init, listing as cli_list  # argparse only at import time
    cli_init.add_parser(sub, common)
    cli_list.add_parser(sub, common)

    from wizard.cli import cert as cli_cert  # `cert` and `login`: argparse only at import time
    cli_cert.add_parser(sub, common)

    from wizard.cli import doctor as cli_doctor, register as cli_register  # argparse only at import time
    cli_register.add_parser(sub, common)
    cli_doctor.add_parser(sub, common)
    from wizard.cli import relay as cli_relay  # argparse only at import time (aiosmtpd when it runs)
    cli_relay.add_parser(sub, common)

    s = sub.add_parser("sandbox", help="serve the sandbox tenant on 127.0.0.1 until Ctrl-C",
                       description="Serve the sandbox tenant (identity platform + EWS) on 127.0.0.1 with a throwaway CA, "
                                   "and write a config pointing at it, for trying `check` by hand. "
                                   "Its IDs are printed; its secrets only go into the written config.",
                       epilog="exit codes: 0 stopped with Ctrl-C, SIGTERM or SIGHUP (its temporary CA and keys removed), "
                              "1 the config could not be written, 2 usage.")
    s.add_argument("--write-config", metavar="PATH",
                   help="also write a working config for the sandbox to PATH (a client secret over EWS unless told)")
    s.add_argument("--system", choices=("monitor_g5", "efecte_esm", "generic"), default="monitor_g5",
                   help="the written config's system (default monitor_g5)")
    s.add_argument("--flow", choices=("client_secret", "password", "certificate", "device_code"),
                   default="client_secret", help="its flow (default client_secret; device_code: sign in with "
                                                 "`mailwizard login` on the sandbox's verification page)")
    s.add_argument("--protocol", choices=("ews", "graph", "smtp", "imap", "smtp+imap"), default=None,
                   help="its protocols (default ews; efecte_esm: smtp+imap)")
    s.add_argument("--latency", type=_seconds, default=0.0, metavar="SECONDS",
                   help="delay each sandbox response (to try progress, timeouts and Ctrl-C)")
    s.add_argument("--unregistered", action="store_true",
                   help="write the config without tenant ID, client ID and credential, for `mailwizard register`")
    s.add_argument("--approve-device-codes", action="store_true",
                   help="approve every device-code sign-in as the sample admin (admin@contoso.com) after a second")
    return p


_QUICK_OPTIONS = {"--config": "config", "--profile": "profile"}


def quick_wizard_args(argv: list[str]) -> argparse.Namespace | None:
    """The usual ways to open the wizard (`mailwizard [wizard] [--config PATH]
    [--profile NAME]`), read as the parser reads them but without building it,
    which costs more than the rest of the start-up before the first screen.
    None for anything else (the parser then reads it, with its messages)."""
    rest = list(argv[1:] if argv[:1] == ["wizard"] else argv)
    values: dict[str, str | None] = {"config": None, "profile": None}
    while rest:
        name, eq, value = rest.pop(0).partition("=")
        if name not in _QUICK_OPTIONS:
            return None
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        values[_QUICK_OPTIONS[name]] = value
    return argparse.Namespace(command="wizard", **values)


def main(argv: list[str] | None = None) -> int:
    _closed_streams_to_devnull()
    _tolerant_streams()
    _pipe_safe_streams()
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:   # written through a stream kept from before: stop writing, no traceback
        for stream in (sys.stdout, sys.stderr):
            _PipeSafe.silence(stream)
        return EXIT_FAIL


def _main(argv: list[str]) -> int:
    args = quick_wizard_args(argv)   # plain `mailwizard` too: no parser to build
    if args is None:
        if argv[:1] == ["check"] and _nagios(argv):
            args, said = _nagios_args(argv)
            if args is None:
                return _nagios_usage_error(said)
        else:
            args = build_parser().parse_args(argv)
    return _main_args(args)


def _main_args(args: argparse.Namespace) -> int:
    command = args.command or "wizard"
    problem = None if command == "sandbox" else _config_source_problem(args)
    if problem:
        if command == "check" and getattr(args, "format", None) == "nagios":
            from wizard.cli.monitoring import usage_error
            return usage_error(args, problem)
        if getattr(args, "json", False) and command in ("check", "init"):   # --json: stdout is one JSON object
            from wizard.cli.check import _config_failure
            import json
            print(json.dumps(_config_failure(problem, "Correct the named option or variable, or leave it out.")))
        else:
            print(f"mailwizard: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.profile and not args.config:
        from wizard.config.schema import ConfigError
        from wizard.config.files import profile_path
        try:
            args.config = str(profile_path(args.profile))
        except ConfigError as exc:
            if command == "check" and getattr(args, "format", None) == "nagios":
                from wizard.cli.monitoring import usage_error
                return usage_error(args, exc.render())
            print(f"mailwizard: {exc.render()}", file=sys.stderr)
            return EXIT_USAGE
    try:
        if command in ("wizard", "demo"):
            from wizard.cli import tui
            return tui.run(args) if command == "wizard" else tui.run_demo(args)
        if command == "check":
            from wizard.cli import monitoring  # --format prometheus|nagios, --textfile, --all-profiles
            from wizard.cli.check import run
            return monitoring.run(args) if monitoring.wanted(args) else run(args)
        if command == "show":
            from wizard.cli.show import run
            return run(args)
        if command == "report":
            from wizard.cli.report import run
            return run(args)
        if command == "sandbox":
            return _cmd_sandbox(args)
        if command == "send":
            from wizard.cli.send import run
            return run(args)
        if command == "poll":
            from wizard.cli.poll import run
            return run(args)
        if command in ("cert", "login"):
            from wizard.cli.cert import run
            return run(args)
        if command == "relay":
            from wizard.cli.relay import run
            return run(args)
        if command in ("init", "list", "export", "rotate", "discover", "register", "doctor"):
            from importlib import import_module
            module = "listing" if command == "list" else command
            return import_module(f"wizard.cli.{module}").run(args)
    except KeyboardInterrupt:
        print(f"\nmailwizard: {INTERRUPTED.get(command, 'interrupted; nothing was written.')}", file=sys.stderr)
        return 130
    build_parser().error(f"unknown command {command}")
    return EXIT_USAGE


def _nagios(argv: list[str]) -> bool:
    return "--format=nagios" in argv or any(a == "--format" and b == "nagios" for a, b in zip(argv, argv[1:]))


# what to write instead, for the options --format nagios is used with
_NAGIOS_EXAMPLES = {
    "--warning-days": "--warning-days 30", "--critical-days": "--critical-days 7",
    "--config": "--config /etc/mailwizard/mailwizard.toml", "--profile": "--profile production",
    "--send-to": "--send-to someone@contoso.com", "--format": "--format nagios",
    "--textfile": "--textfile /var/lib/node_exporter/textfile_collector/mailwizard.prom",
}


def _nagios_args(argv: list[str]) -> tuple[argparse.Namespace | None, str]:
    """`check --format nagios ...` read by the parser: (the options, "") or,
    when they are wrong, (None, the usage message argparse wrote)."""
    import contextlib
    import io
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return build_parser().parse_args(argv), ""
    except SystemExit as exc:
        if exc.code in (0, None):     # --help: printed on stdout as usual
            raise
        return None, said.getvalue()


def _nagios_usage_error(said: str) -> int:
    """A plugin's usage error: UNKNOWN (3), not CRITICAL (2), and said on
    stdout's first line (the one Nagios shows) with what to write instead;
    argparse's usage stays on stderr."""
    from wizard.cli.monitoring import nagios_unknown
    sys.stderr.write(said)
    error = next((line.split(" error: ", 1)[1] for line in reversed(said.splitlines()) if " error: " in line),
                 "the options could not be read")
    option = next((o for o in _NAGIOS_EXAMPLES if o in error), None)
    if "unrecognized arguments" in error:
        fix = "leave it out (the options: mailwizard check --help)"
    elif option:
        fix = f"write e.g. {_NAGIOS_EXAMPLES[option]}"
    else:
        fix = "see mailwizard check --help"
    return nagios_unknown(f"{' '.join(error.split()).rstrip('.')}; {fix}")


def _tolerant_streams() -> None:
    """Output to a non-UTF-8 terminal or file (ISO-8859-1 locale, Windows code
    page when redirected) shows '?' for the step symbols instead of a traceback."""
    for stream in (sys.stdout, sys.stderr):
        try:
            "✓✗…·".encode(stream.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            try:
                stream.reconfigure(errors="replace")
            except (AttributeError, ValueError):
                pass


def _closed_streams_to_devnull() -> None:
    """`mailwizard check >&-`: Python has no sys.stdout (None) when the
    descriptor is closed. The command runs as usual, its output dropped (and the
    descriptor taken, so no file the command opens lands on it)."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")


class _PipeSafe:
    """A stream whose reader went away (`mailwizard ... | head -1`): what is
    still written goes to /dev/null, so the command ends as it would, with its
    exit code and no BrokenPipeError traceback (Python's docs, "Note on SIGPIPE")."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self.silence(self._stream)
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self.silence(self._stream)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    @staticmethod
    def silence(stream) -> None:
        """Point the stream's descriptor at /dev/null (its buffered text goes there)."""
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


def _pipe_safe_streams() -> None:
    """Standard output and error that are pipes (not the terminal) in _PipeSafe."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            pipe = not isinstance(stream, _PipeSafe) and not stream.isatty() and stream.fileno() >= 0
        except (AttributeError, OSError, ValueError):   # pytest's capture, a closed stream
            continue
        if pipe:
            setattr(sys, name, _PipeSafe(stream))


def _config_source_problem(args) -> str | None:
    """An empty --config/--profile (e.g. an unset shell variable) or a
    $MAILWIZARD_PROFILE that is not a valid name: the message; else None.
    Without this an empty value silently means the default config."""
    if args.config == "":
        return "--config is empty: give the config file's path, or leave --config out for the default"
    if args.profile == "":
        return "--profile is empty: give a profile name (e.g. test, production), or leave --profile out"
    env_profile = os.environ.get("MAILWIZARD_PROFILE")
    if not args.config and not args.profile and not os.environ.get("MAILWIZARD_CONFIG") and env_profile:
        from wizard.config.schema import ConfigError
        from wizard.config.files import profile_path
        try:
            profile_path(env_profile)
        except ConfigError as exc:
            return f"$MAILWIZARD_PROFILE: {exc.message}"
    return None


def _cmd_sandbox(args) -> int:
    from pathlib import Path
    from wizard.sandbox import Sandbox
    from wizard.sandbox import sample
    from wizard.sandbox.cleanup import stop_on_signals, watch
    if args.write_config is not None and (not args.write_config or Path(args.write_config).expanduser().is_dir()):
        print(f"mailwizard sandbox: --write-config {args.write_config!r} must be a file path (e.g. /tmp/sandbox.toml)",
              file=sys.stderr)
        return EXIT_USAGE
    stop = stop_on_signals()    # Ctrl-C, SIGTERM, SIGHUP: stop and remove the temp files (CA, keys)
    watch()                     # ... which go even when the process is killed
    with Sandbox(latency=args.latency) as sb:
        print(f"sandbox tenant serving on {sb.base_url}")
        print(f"CA certificate: {sb.ca_path}")
        print(f"tenant: {sample.TENANT_ID} ({sample.DOMAIN})")
        print(f"client-secret app: {sample.SECRET_APP_ID}; password app: {sample.PASSWORD_APP_ID}")
        if args.approve_device_codes:
            sb.device.auto_approve = (sample.ADMIN_USER, 1.0)
            print(f"device-code sign-ins are approved as {sample.ADMIN_USER} after a second")
        if args.write_config:
            from wizard.config.files import save
            try:
                protocol = args.protocol or ("smtp+imap" if args.system == "efecte_esm" else None)
                shape = sample.unregistered_config if args.unregistered else sample.shaped_config
                path = save(shape(sb, args.system, args.flow, protocol), args.write_config)
            except (OSError, UnicodeDecodeError) as exc:
                print(f"mailwizard sandbox: cannot write --write-config {args.write_config}: "
                      f"{getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
                return EXIT_FAIL
            print(f"wrote {path} ({args.system}, {args.flow}, {protocol or 'ews'}): "
                  f"try `mailwizard check --config {path}`")
        print("Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    print("sandbox stopped", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
