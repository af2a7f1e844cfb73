"""A private Postfix as a *client* of the relay: ``relayhost`` with SASL (Cyrus) and TLS, the way a
user with Postfix relays through ``mailwizard relay``. Started under a temp directory (its own
config, queue and data directories; no listener of its own), fed with its own ``sendmail -C DIR``,
its queue read with ``postqueue -c DIR -j``, stopped at the end. Needs root (Postfix's master) and
Cyrus SASL's PLAIN/LOGIN client modules (Debian: libsasl2-modules).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from interop_servers import POSTFIX, POSTFIX_MASTER, SETPRIV, _run, settled

SENDMAIL = shutil.which("sendmail") or "/usr/sbin/sendmail"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
SERVICES = [  # master.cf: no smtpd (mail comes in through sendmail: postdrop, pickup), no chroot
    ("pickup", "n", "60", "1", "pickup"), ("cleanup", "n", "-", "0", "cleanup"), ("qmgr", "n", "300", "1", "qmgr"),
    ("tlsmgr", "-", "1000?", "1", "tlsmgr"), ("rewrite", "-", "-", "-", "trivial-rewrite"),
    ("bounce", "-", "-", "0", "bounce"), ("defer", "-", "-", "0", "bounce"), ("trace", "-", "-", "0", "bounce"),
    ("verify", "-", "-", "1", "verify"), ("flush", "n", "1000?", "0", "flush"),
    ("proxymap", "-", "-", "-", "proxymap"), ("smtp", "-", "-", "-", "smtp"), ("relay", "-", "-", "-", "smtp"),
    ("showq", "n", "-", "-", "showq"), ("error", "-", "-", "-", "error"), ("retry", "-", "-", "-", "error"),
    ("discard", "-", "-", "-", "discard"), ("anvil", "-", "-", "1", "anvil"), ("scache", "-", "-", "1", "scache")]


def missing() -> str | None:
    """Why a Postfix client cannot run here (None: it can)."""
    for path in (POSTFIX, POSTFIX_MASTER, SENDMAIL, POSTQUEUE, POSTCONF):
        if not os.path.exists(path):
            return f"{path} is not installed"
    if not any(glob.glob(f"{d}/sasl2/libplain.so*") for d in ("/usr/lib/*", "/usr/lib", "/usr/lib64")):
        return "Cyrus SASL's PLAIN/LOGIN client modules are not installed (libsasl2-modules)"
    if os.geteuid() != 0:
        return "Postfix's master needs root to start"
    return None


def main_cf_lines(relay_port: int, password_file: str, *, tls: str = "verify", ca_file: str = "",
                  sasl_options: str | None = "noanonymous") -> list[str]:
    """The lines a user adds to main.cf to relay through mailwizard (README, "The relay")."""
    lines = [f"relayhost = [127.0.0.1]:{relay_port}",
             "smtp_sasl_auth_enable = yes",
             f"smtp_sasl_password_maps = texthash:{password_file}"]
    if sasl_options is not None:
        lines.append(f"smtp_sasl_security_options = {sasl_options}")
    lines.append(f"smtp_tls_security_level = {tls}")
    if ca_file:
        lines.append(f"smtp_tls_CAfile = {ca_file}")
    return lines


def password_line(relay_port: int, user: str, password: str) -> str:
    """The password file's one line: the relay's address (as in relayhost), the client's name and password."""
    return f"[127.0.0.1]:{relay_port} {user}:{password}"


class PostfixClient:
    def __init__(self, relay_port: int, user: str, password: str, *, tls: str = "verify", ca_path: str = "",
                 sasl_options: str | None = "noanonymous"):
        """``sasl_options`` None: no such line (Postfix's default, ``noplaintext, noanonymous``)."""
        self.relay_port, self.user, self.password = relay_port, user, password
        self.tls, self.ca_path, self.sasl_options = tls, ca_path, sasl_options
        self.root: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._reloads = 0

    @property
    def conf(self) -> Path:
        return self.root / "etc"

    def start(self) -> "PostfixClient":
        self.root = Path(tempfile.mkdtemp(prefix="mw-postfix-client-"))
        self.root.chmod(0o755)          # Postfix's unprivileged processes walk into it
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        r, d = self.root, self.conf
        for sub in ("etc", "queue", "data", "log"):
            (r / sub).mkdir()
        pf = pwd.getpwnam("postfix")
        os.chown(r / "data", pf.pw_uid, pf.pw_gid)
        ca = ""
        if self.ca_path:
            ca = str(d / "relay-ca.pem")
            shutil.copy(self.ca_path, ca)
        self._write_password(self.password)
        own = main_cf_lines(self.relay_port, str(d / "relay_passwd"), tls=self.tls, ca_file=ca,
                            sasl_options=self.sasl_options)
        (d / "main.cf").write_text("\n".join([
            "compatibility_level = 3.6", f"config_directory = {d}", f"queue_directory = {r}/queue",
            f"data_directory = {r}/data", "mail_owner = postfix", "setgid_group = postdrop",
            "myhostname = app.contoso.com", "mydomain = contoso.com", "myorigin = $mydomain", "mydestination =",
            "inet_interfaces = loopback-only", "inet_protocols = ipv4", f"maillog_file = {r}/log/postfix.log",
            f"maillog_file_prefixes = {r}/log/", "alias_maps =", "alias_database =", "biff = no",
            "disable_dns_lookups = yes", "smtp_dns_support_level = disabled",
            "delay_warning_time = 0", "queue_run_delay = 1s", "minimal_backoff_time = 1s",
            "maximal_backoff_time = 1s", "smtp_tls_loglevel = 1", *own, ""]))
        (d / "master.cf").write_text("".join(f"{name} unix {private} - n {wake} {limit} {cmd}\n"
                                             for name, private, wake, limit, cmd in SERVICES)
                                     + "postlog unix-dgram n - n - 1 postlogd\n")
        settled(d)
        _run([POSTFIX, "-c", str(d), "check"], r / "log" / "postfix-check.txt", "postfix check")   # queue dirs
        out = open(r / "log" / "master.txt", "wb")
        prefix = [SETPRIV, "--pdeathsig", "TERM", "--"] if SETPRIV else []
        try:
            self.proc = subprocess.Popen(prefix + [POSTFIX_MASTER, "-c", str(d), "-d"], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        self._wait(lambda: (r / "queue" / "public" / "pickup").exists(), "start")

    def _wait(self, condition, what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Postfix (client) did not {what}:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()            # the master ends its children
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> "PostfixClient":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what an admin does ---------------------------------------------------------------------------
    def _write_password(self, password: str) -> None:
        """The password file (mode 0600)."""
        path = self.conf / "relay_passwd"
        path.write_text(password_line(self.relay_port, self.user, password) + "\n")
        path.chmod(0o600)

    def set_password(self, password: str) -> None:
        """Fix the password file (texthash: read when a process starts) and reload."""
        self._write_password(password)
        self.reload()

    def reconfigure(self, **params: str) -> None:
        """``postconf -e NAME=VALUE`` for each parameter, then reload."""
        for name, value in params.items():
            subprocess.run([POSTCONF, "-c", str(self.conf), "-e", f"{name} = {value}"], capture_output=True,
                           timeout=30, check=True)
        self.reload()

    def reload(self) -> None:
        """What ``postfix reload`` ends with (SIGHUP to the master), waited on in the master's log."""
        settled(self.conf)
        os.kill(self.proc.pid, signal.SIGHUP)
        self._reloads += 1
        self._wait(lambda: self._log_text().count(": reload -- ") >= self._reloads, "reload")

    def flush(self) -> None:
        """``postqueue -f``: try the deferred mail now."""
        subprocess.run([POSTQUEUE, "-c", str(self.conf), "-f"], capture_output=True, timeout=30, check=True)

    def sendmail(self, raw: bytes, sender: str, recipients: list[str] | None = None) -> None:
        """Hand ``raw`` to Postfix's own sendmail: to ``recipients``, or with ``-t`` (To/Cc/Bcc; Postfix
        takes the recipients from them and drops the Bcc: header)."""
        argv = [SENDMAIL, "-C", str(self.conf), "-f", sender, "-i"]
        argv += ["--", *recipients] if recipients else ["-t"]
        res = subprocess.run(argv, input=raw, capture_output=True, timeout=30)
        assert res.returncode == 0, res.stderr.decode(errors="replace")

    def queue(self) -> list[dict]:
        """Postfix's queue (``postqueue -j``: one object per message with each recipient's delay reason)."""
        res = subprocess.run([POSTQUEUE, "-c", str(self.conf), "-j"], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]

    def queue_text(self) -> str:
        """``postqueue -p``: what an admin reads."""
        return subprocess.run([POSTQUEUE, "-c", str(self.conf), "-p"], capture_output=True, text=True,
                              timeout=30).stdout

    def _log_text(self) -> str:
        path = self.root / "log" / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self) -> str:
        """Postfix's log (for a failing test's output)."""
        return self._log_text()[-8000:] if self.root else ""
