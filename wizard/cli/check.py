"""`mailwizard check`: the connection test without the TUI."""

from __future__ import annotations

import argparse
import json
import re
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from wizard.cli.output import SYMBOLS, paint, scrub, use_colour


CONFIG_FIX = "Correct the named field in the file, or run `mailwizard` to fix it in the wizard."


def _config_failure(message: str, fix: str = CONFIG_FIX) -> dict:
    return {"ok": False, "steps": [{"id": "config", "status": "fail", "ms": 0, "summary": message,
                                    "code": "config.invalid", "fix": fix}]}


def run(args) -> int:
    from wizard.config.schema import ConfigError, secrets_of
    from wizard.config.files import load, resolve_path
    # --format prometheus|nagios, --textfile and --all-profiles run in wizard/cli/monitoring.py
    if getattr(args, "format", None) == "json":
        args.json = True
    elif getattr(args, "format", None) == "text" and args.json:
        print("mailwizard check: --json and --format text ask for two outputs: give one of them", file=sys.stderr)
        return EXIT_USAGE
    path = resolve_path(args.config)
    try:
        cfg = load(path)
    except ConfigError as exc:
        if args.json:
            print(json.dumps(_config_failure(exc.render())))
        else:
            print(f"mailwizard check: config error\n{exc.render()}", file=sys.stderr)
        return EXIT_USAGE

    if args.send_to is not None:     # given empty (an unset shell variable) is an error, not "don't send"
        from wizard.config.fields import check_email
        checked = check_email(args.send_to, "--send-to")
        if not checked.ok:
            if args.json:
                print(json.dumps(_config_failure(checked.error, "Give --send-to a full address, or leave it out.")))
            else:
                print(f"mailwizard check: {checked.error}", file=sys.stderr)
            return EXIT_USAGE
        args.send_to = checked.value

    from wizard.check.engine import Tuning, run_check

    try:
        tuning = Tuning.from_env()
    except ValueError as exc:
        if args.json:
            print(json.dumps(_config_failure(str(exc), "Correct or unset that environment variable.")))
        else:
            print(f"mailwizard check: {exc}", file=sys.stderr)
        return EXIT_USAGE

    secrets = secrets_of(cfg)
    colour = use_colour() and not args.json
    live = None
    if not args.json and sys.stdout.isatty():
        def live(step):     # one status line, rewritten; a retry's countdown shows in it
            if step.status != "running":
                return
            if not step.summary:
                text = f"  {SYMBOLS['running']} {step.title} ..."
            else:       # a wait: its end holds the countdown ("retrying in 12 s (attempt 2 of 5).")
                head, summary = f"  {SYMBOLS['running']} {step.id}: ", scrub(step.summary, secrets)
                room = 78 - len(head)
                text = head + (summary if len(summary) <= room else "…" + summary[-(room - 1):])
            print(f"{text[:78]:<78}", end="\r", flush=True)
    seen: dict = {}     # step id -> a copy of its last state, for a Ctrl-C in the middle

    def track(step):
        import copy
        seen[step.id] = copy.copy(step)
        if live is not None:
            live(step)
    interrupted = False
    from wizard.monitor.watch import conclude, observe, profile_name
    before = observe(cfg)       # the delegated sign-in's last use, before this check refreshes it
    try:
        report = run_check(cfg, send_to=args.send_to, on_step=track, tuning=tuning)
    except KeyboardInterrupt:     # Ctrl-C: still the one JSON object (or the tree), then exit 130
        interrupted = True
        report = _interrupted_report(cfg, args.send_to, seen)
    if live is not None:
        print(" " * 78, end="\r", flush=True)
    warn_open_secrets(report, cfg, path)
    if not interrupted:         # idle sign-in warning; alert mails with [alerts] (step "alerts")
        conclude(cfg, path, report, before, profile=profile_name(path, args.profile),
                 send_alerts=not getattr(args, "no_alerts", False))
    from wizard.cli.support import record_check
    data = public_json(report)
    record_check(data | {"details": [dict(id=s.id, **s.details) for s in report.steps if s.details]},
                 str(path), secrets)
    if args.json:
        print(scrub(json.dumps(data), secrets), flush=True)
    else:
        print(scrub(render_tree(report, str(path), colour), secrets), flush=True)
    if interrupted:
        raise KeyboardInterrupt   # `mailwizard` says what was left behind and exits 130
    return EXIT_OK if report.ok else EXIT_FAIL


def _interrupted_report(cfg, send_to, seen: dict):
    """The report of a check stopped with Ctrl-C: the steps that finished as
    they ended, every other one "skip"; never ok."""
    from wizard.check.engine import Report, plan
    steps = []
    for planned in plan(cfg, send_to):
        step = seen.get(planned.id, planned)
        if step.status not in FINAL:
            step.status, step.ms = "skip", 0
            step.summary, step.code, step.fix = "Skipped: the test was interrupted (Ctrl-C).", None, None
        steps.append(step)
    return Report(False, steps)


FINAL = ("pass", "warn", "fail", "skip")


def open_secret_files(cfg, path) -> list[tuple[str, int, str]]:
    """(file, mode, what it holds) for each file holding a secret in clear that
    others than its owner may read: the config itself when it holds a literal
    secret, and each ``file:`` secret. ssh refuses such key files; we warn."""
    import os
    import stat
    from wizard.config.files import real_target
    values = ([("the client secret", cfg.auth.client_secret), ("the password", cfg.auth.password)]
              + [("an incoming account's password", a.password) for a in cfg.incoming.accounts]
              + [(f"user {u.name}'s password", u.password) for u in cfg.users])
    files: dict[str, list[str]] = {}
    for what, value in values:
        if not value or value.startswith("env:"):
            continue
        where = os.path.expanduser(value[5:]) if value.startswith("file:") else str(path)
        files.setdefault(where, []).append(what)
    out = []
    for where, whats in files.items():
        try:
            mode = stat.S_IMODE(os.stat(real_target(where)).st_mode)
        except OSError:
            continue
        if mode & 0o077:
            out.append((where, mode, " and ".join(dict.fromkeys(whats))))
    return out


def warn_open_secrets(report, cfg, path) -> None:
    """A passing ``config`` step becomes a warning when a secret lies in a file
    others may read (same step ids and JSON shape; warnings keep the exit code 0)."""
    found = open_secret_files(cfg, path)
    step = next((s for s in report.steps if s.id == "config"), None)
    if not found or step is None or step.status not in ("pass", "warn"):
        return
    import shlex
    first, mode, what = found[0]
    more = f" (and {len(found) - 1} more file(s))" if len(found) > 1 else ""
    text = (f"{first} holds {what} in clear but has mode {mode:04o}: other users on this "
            f"machine may read it{more}.")
    fix = ("; ".join(f"chmod 600 {shlex.quote(f)}" for f, _, _ in found) +
           " (only the owner may read it, as ssh requires for private keys).")
    if step.status == "warn":           # keep the step's own warning first
        step.summary, step.fix = f"{step.summary} Also: {text}", f"{step.fix or ''} {fix}".strip()
        return
    step.status, step.summary, step.code, step.fix = "warn", text, "config.mode", fix


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of a description or epilog and wraps each line to
    the terminal's width (argparse's raw formatter does not wrap at all)."""

    def _fill_text(self, text, width, indent):
        import textwrap
        out = []
        for line in text.splitlines():
            out += textwrap.wrap(line, width, initial_indent=indent, subsequent_indent=indent,
                                 break_on_hyphens=False, break_long_words=False) or [indent]
        return "\n".join(out)


def public_json(report) -> dict:
    """``report.to_json()`` held to the public shape: status one of pass, warn,
    fail, skip (a step the engine left pending or running counts as skipped),
    ms a number, summary a text, code and fix a text or null."""
    data = report.to_json()
    for s in data["steps"]:
        if s["status"] not in FINAL:
            s["status"] = "skip"
        s["ms"] = float(s["ms"] or 0)
        s["summary"] = str(s["summary"] or "")
        s["code"] = None if s["code"] in (None, "") else str(s["code"])
        s["fix"] = None if s["fix"] in (None, "") else str(s["fix"])
    data["ok"] = bool(data["ok"]) and all(s["status"] != "fail" for s in data["steps"])
    return data


ID_WIDTH = 8     # the step id column; a longer id (mailbox:<address>, user:<name>) gets a line of its own
_CODE_LINE = re.compile(r"^(\s|[$#@{}(|]|[A-Z][a-z]+-[A-Z]\w*\b|(if|foreach|for|while)\s*[({])")


def is_code_line(line: str) -> bool:
    """A line of a script or command in a step's text (indented, or starting like
    PowerShell: ``$var``, ``# comment``, ``Verb-Noun``, ``if (``): pasted as it is."""
    return bool(_CODE_LINE.match(line))


def wrap_text(text: str, width: int) -> list[str]:
    """The text's own lines, prose wrapped to ``width``; a script or command line
    (``is_code_line``) is kept whole, as a line break inside it would break it when pasted."""
    import textwrap

    out = []
    for line in (text or "").splitlines():
        if is_code_line(line):
            out.append(line.rstrip())
        else:
            out += textwrap.wrap(line, width, break_on_hyphens=False, break_long_words=False) or [""]
    return out


def render_tree(report, path: str, colour: bool, width: int = 78) -> str:
    lines = [f"mailwizard check  {path}"]
    pad = " " * 20
    column = pad + " " * (ID_WIDTH + 1)         # where every summary line starts
    for s in report.steps:
        tag = paint(f"{SYMBOLS.get(s.status, '?')} {s.status.upper():4}", s.status, colour)
        ms = f"{s.ms:5.0f} ms" if s.status not in ("skip", "pending") else " " * 8
        summary = wrap_text(s.summary, width - len(column))
        if len(s.id) <= ID_WIDTH and summary:
            lines.append(f"  {tag}  {ms}  {s.id:<{ID_WIDTH}} {summary.pop(0)}")
        else:
            lines.append(f"  {tag}  {ms}  {s.id}")
        lines += [column + more for more in summary]
        body = []
        if s.status in ("fail", "warn"):
            if s.code:
                body.append(("code:  ", s.code))
            if s.fix:
                body.append(("fix:   ", s.fix))
            if s.guide_step:
                body.append(("guide: ", s.guide_step))
            for k in ("trace_id", "correlation_id"):
                if s.details.get(k):
                    body.append((f"{k.replace('_', ' ')}: ", str(s.details[k])))
        for label, text in body:
            for n, line in enumerate(wrap_text(text, width - len(pad) - 7) or [""]):
                lines.append((pad + (label if n == 0 else " " * 7) + line).rstrip())
    failed = [s for s in report.steps if s.status == "fail"]
    warned = [s for s in report.steps if s.status == "warn"]
    if report.ok:
        verdict = paint("OK", "pass", colour) + (f" with {len(warned)} warning(s)" if warned else ": all steps passed")
    else:
        verdict = paint("FAILED", "fail", colour) + f": {len(failed)} step(s) failed"
    lines.append(f"Result: {verdict}")
    return "\n".join(lines)
