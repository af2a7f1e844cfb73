"""`mailwizard check` for monitoring: --format prometheus|nagios, --textfile,
--all-profiles, alerts. The work is in ``wizard.monitor``; this module reads
the flags, writes the output and picks the exit code. Only argparse at import."""

from __future__ import annotations

import json
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE

FORMATS = ("text", "json", "prometheus", "nagios")
NAGIOS_UNKNOWN = 3
TEXTFILE_MODE = 0o644       # node_exporter runs as its own user; the metrics hold no secret

HELP_EPILOG = (
    "--format nagios (a Nagios/Icinga/Zabbix plugin: one status line with perfdata) exits 0 OK, 1 WARNING, "
    "2 CRITICAL, 3 UNKNOWN instead: CRITICAL when a step failed or an end date (secret, certificate, EWS "
    "switch-off) is --critical-days or fewer away, WARNING when a step warned or one is --warning-days or "
    "fewer away.\n"
    "--format prometheus prints the metrics (text exposition format) labelled by profile; --textfile PATH "
    "also writes them atomically for node_exporter's textfile collector (PATH ends in .prom, its folder "
    "exists; mode 0644: the metrics hold no secret), whatever --format prints.\n"
    "--all-profiles checks the default config and every profile, at most 4 at a time; exit 1 when any of "
    "them failed. --json then prints {\"ok\": bool, \"profiles\": [{\"profile\", \"config\", \"ok\", "
    "\"steps\"}]} (each entry's ok and steps as in the single --json object).\n"
    "alerts: with [alerts] to = [...] in the config, check mails those addresses through the config's own "
    "mailbox when the secret, certificate or EWS ends within [alerts] days_before (30, 14, 7, 1), when the "
    "test starts failing and when it works again; each once (state in the user state dir, 0600). An alert "
    "that cannot be sent fails the step 'alerts'. --no-alerts sends none.\n"
    "delegated flows (password, device code): each run refreshes the saved sign-in when it was idle for 12 "
    "hours, and the token step warns when it had been idle for 60 days or more (it lapses after 90: "
    "AADSTS700082).")


def add_arguments(c) -> None:
    c.add_argument("--format", choices=FORMATS, default=None,
                   help="output: text (the default tree), json (as --json), prometheus or nagios")
    c.add_argument("--textfile", metavar="PATH",
                   help="also write the Prometheus metrics to PATH (a .prom file, atomically, mode 0644)")
    c.add_argument("--all-profiles", action="store_true",
                   help="check the default config and every profile concurrently and report each")
    c.add_argument("--no-alerts", action="store_true", help="send no alert mail even with [alerts] in the config")
    c.add_argument("--warning-days", type=int, default=30, metavar="N",
                   help="nagios: WARNING when an end date is N days or fewer away (default 30)")
    c.add_argument("--critical-days", type=int, default=7, metavar="N",
                   help="nagios: CRITICAL when an end date is N days or fewer away (default 7)")


def wanted(args) -> bool:
    """This module handles the run (else check.py's own path, with its live progress)."""
    return bool(args.format in ("prometheus", "nagios") or args.textfile or args.all_profiles)


def nagios_unknown(message: str) -> int:
    """A plugin that cannot check: UNKNOWN (3), said on stdout's first line (the one Nagios shows)."""
    print(f"MAILWIZARD UNKNOWN - {message}")
    return NAGIOS_UNKNOWN


def usage_error(args, message: str) -> int:
    if getattr(args, "format", None) == "nagios":
        return nagios_unknown(message)
    if getattr(args, "json", False):
        from wizard.cli.check import _config_failure
        print(json.dumps(_config_failure(message, "Correct the named option, or leave it out.")))
        return EXIT_USAGE
    print(f"mailwizard check: {message}", file=sys.stderr)
    return EXIT_USAGE


def _options_problem(args) -> str | None:
    from pathlib import Path
    if args.json and args.format not in (None, "json"):
        return f"--json and --format {args.format} ask for two outputs: give one of them"
    if args.all_profiles and (args.config or args.profile):
        return "--all-profiles checks every profile: leave out --config and --profile"
    if args.all_profiles and args.send_to is not None:
        return "--send-to sends one test message: use it with one config, not --all-profiles"
    if not 0 <= args.critical_days <= args.warning_days:
        return (f"--critical-days {args.critical_days} and --warning-days {args.warning_days}: give "
                "0 <= critical <= warning (e.g. --warning-days 30 --critical-days 7)")
    if args.textfile is not None:
        p = Path(args.textfile).expanduser()
        if not p.name.endswith(".prom"):
            return (f"--textfile {args.textfile}: node_exporter's textfile collector reads only files ending "
                    "in .prom (e.g. /var/lib/node_exporter/textfile_collector/mailwizard.prom)")
        if not p.parent.is_dir():
            return (f"--textfile {args.textfile}: folder {p.parent} does not exist (it is node_exporter's "
                    "--collector.textfile.directory)")
    return None


def run(args) -> int:
    from wizard.config.files import list_profiles, resolve_path

    problem = _options_problem(args)
    if problem:
        return usage_error(args, problem)
    if args.send_to is not None:
        from wizard.config.fields import check_email
        checked = check_email(args.send_to, "--send-to")
        if not checked.ok:
            return usage_error(args, checked.error)
        args.send_to = checked.value
    from wizard.check.engine import Tuning
    try:
        tuning = Tuning.from_env()
    except ValueError as exc:
        return usage_error(args, str(exc))
    from wizard.cli.check import warn_open_secrets
    from wizard.monitor.watch import MAX_PARALLEL, check_all, check_profile, profile_name
    options = dict(send_alerts=not args.no_alerts, tuning=tuning, post=warn_open_secrets)
    if args.all_profiles:
        profiles = list_profiles()
        if not profiles:
            return usage_error(args, "no config to check: neither the default config nor any profile exists "
                                     "(create one with `mailwizard` or `mailwizard init`)")
        done = []

        def progress(result):       # on a terminal: one line per profile as it ends
            done.append(result)
            print(f"  {len(done)}/{len(profiles)} {result.profile}: {'OK' if result.ok else 'FAILED'}",
                  file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(f"checking {len(profiles)} profile(s), at most {MAX_PARALLEL} at a time ...", file=sys.stderr,
                  flush=True)
        results = check_all(profiles, on_done=progress if sys.stderr.isatty() else None, **options)
    else:
        path = resolve_path(args.config)
        results = [check_profile(profile_name(path, args.profile), path, send_to=args.send_to, **options)]
    secrets = _secrets(results)
    failed_write = _write_textfile(args, results)
    code = _print(args, results, secrets)
    if not args.all_profiles:
        _record(results[0], secrets)
    if args.format == "nagios":
        return NAGIOS_UNKNOWN if failed_write and code == 0 else code
    if failed_write:
        return EXIT_FAIL
    if not args.all_profiles and results[0].config_error:
        return EXIT_USAGE
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAIL


def _secrets(results) -> list[str]:
    from wizard.config.schema import secrets_of
    from wizard.config.files import load_lenient
    out: list[str] = []
    for r in results:
        cfg, _problems, _err = load_lenient(r.path)
        if cfg is not None:
            out += secrets_of(cfg)
    return out


def _write_textfile(args, results) -> bool:
    """True when --textfile was given and could not be written (said on stderr)."""
    if not args.textfile:
        return False
    from pathlib import Path
    from wizard.config.files import write_private
    from wizard.monitor.metrics import render
    target = Path(args.textfile).expanduser()
    try:
        write_private(target, render(results), mode=TEXTFILE_MODE)
    except OSError as exc:
        print(f"mailwizard check: cannot write --textfile {target}: {getattr(exc, 'strerror', None) or exc}",
              file=sys.stderr)
        return True
    return False


def _print(args, results, secrets) -> int:
    """Print in the chosen format; the nagios exit code (0 otherwise)."""
    from wizard.cli.check import public_json, render_tree
    from wizard.cli.output import scrub, use_colour
    fmt = args.format or ("json" if args.json else "text")
    if fmt == "nagios":
        from wizard.monitor.nagios import render
        text, code = render(results, warning_days=args.warning_days, critical_days=args.critical_days)
        print(scrub(text, secrets), flush=True)
        return code
    if fmt == "prometheus":
        from wizard.monitor.metrics import render
        sys.stdout.write(scrub(render(results), secrets))
        sys.stdout.flush()
        return 0
    if fmt == "json":
        if args.all_profiles:
            data = {"ok": all(r.ok for r in results),
                    "profiles": [{"profile": r.profile, "config": r.path, **public_json(r.report)} for r in results]}
        else:
            data = public_json(results[0].report)
        print(scrub(json.dumps(data), secrets), flush=True)
        return 0
    colour = use_colour()
    blocks = [render_tree(r.report, r.path if not args.all_profiles else f"{r.path}  (profile {r.profile})", colour)
              for r in results]
    if args.all_profiles:
        bad = [r.profile for r in results if not r.ok]
        blocks.append(f"Profiles: {len(results) - len(bad)} of {len(results)} OK"
                      + (f"; failed: {', '.join(bad)}" if bad else ""))
    print(scrub("\n\n".join(blocks), secrets), flush=True)
    return 0


def _record(result, secrets) -> None:
    """The last check, for `mailwizard report` (as the plain `check` keeps it)."""
    from wizard.cli.check import public_json
    from wizard.cli.support import record_check
    data = public_json(result.report)
    record_check(data | {"details": [dict(id=s.id, **s.details) for s in result.report.steps if s.details]},
                 result.path, secrets)
