"""systemd units for a config: the relay as a service, and a daily
`mailwizard check --textfile` (a .service and its .timer).

The units name the mailwizard executable by its absolute path and the config
by its path, nothing else: no secret ever goes into a unit file (the config,
mode 0600, keeps them). They run as the user who exported them (``User=``),
so the config, the token cache and the state dir are that user's.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DEFAULT_TEXTFILE = "/var/lib/node_exporter/textfile_collector/mailwizard.prom"


def default_textfile(profile: str | None = None) -> str:
    """Where a config's daily check writes its metrics: one file per profile (node_exporter
    reads them all), ``mailwizard.prom`` for the default config, ``mailwizard-NAME.prom`` for a profile."""
    if not profile:
        return DEFAULT_TEXTFILE
    return DEFAULT_TEXTFILE[:-len(".prom")] + f"-{profile}.prom"


def executable() -> list[str]:
    """The command that runs this mailwizard, as absolute paths: the script this
    process was started as, else ``mailwizard`` on PATH, else this Python with -m wizard."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is not None and started.name == "mailwizard" and started.is_file() and os.access(started, os.X_OK):
        return [os.path.abspath(started)]
    found = shutil.which("mailwizard")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "wizard"]


def _arg(text: str) -> str:
    """One word of ExecStart: '%' doubled (systemd specifiers), quoted when it holds a space or quote."""
    text = text.replace("%", "%%")
    if any(c in text for c in " \t\"'\\;$"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _user() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() == 0:
        return None
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return None


def units(config: Path, *, profile: str | None = None, textfile: str | None = None,
          exe: list[str] | None = None, user: str | None = None) -> dict[str, str]:
    """{file name: text} of mailwizard[-NAME]-relay.service, -check.service and -check.timer."""
    exe = exe or executable()
    textfile = textfile or default_textfile(profile)
    user = user if user is not None else _user()
    config = Path(os.path.abspath(Path(config).expanduser()))
    base = f"mailwizard-{profile}" if profile else "mailwizard"
    run_as = f"User={user}\n" if user else ""
    cmd = " ".join(_arg(a) for a in exe)
    cfg = _arg(str(config))
    relay = (f"[Unit]\nDescription=mailwizard SMTP relay to Microsoft 365 ({config})\n"
             "Wants=network-online.target\nAfter=network-online.target\n\n"
             f"[Service]\nType=simple\n{run_as}ExecStart={cmd} relay --config {cfg}\n"
             "ExecReload=/bin/kill -HUP $MAINPID\n"      # `systemctl reload`: new clients, senders, max_age
             "TimeoutStopSec=90\n"                       # SIGTERM: the deliveries in flight finish
             "Restart=on-failure\nRestartSec=10\n\n"
             "[Install]\nWantedBy=multi-user.target\n")
    check = (f"[Unit]\nDescription=mailwizard connection test, metrics for node_exporter ({config})\n"
             "Wants=network-online.target\nAfter=network-online.target\n\n"
             f"[Service]\nType=oneshot\n{run_as}"
             f"ExecStart={cmd} check --config {cfg} --textfile {_arg(textfile)}\n")
    timer = (f"[Unit]\nDescription=Run {base}-check.service daily\n\n"
             "[Timer]\nOnCalendar=daily\nRandomizedDelaySec=1h\nPersistent=true\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return {f"{base}-relay.service": relay, f"{base}-check.service": check, f"{base}-check.timer": timer}
