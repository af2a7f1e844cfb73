"""SMTP client submission as Exchange Online answers it (smtp.office365.com:587):
STARTTLS, then AUTH XOAUTH2; Send As checks and the submission limits after DATA."""

from __future__ import annotations

import base64
import re
import threading
from collections import deque
from email.utils import format_datetime
from datetime import datetime, timezone

from wizard.sandbox.mailstore import HOST, LineHandler, LineServer, deliver, from_mime, may_send_as, xoauth2

RATE_PER_MINUTE = 30            # messages per minute per mailbox (SMTP AUTH client submission)
RECIPIENTS_PER_DAY = 10_000
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_FAILED = f"535 5.7.3 Authentication unsuccessful [{HOST}]"
SMTP_AUTH_DISABLED = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                      "{}. Visit https://aka.ms/smtp_auth_disabled for more information. [" + HOST + "]")
BASIC_DISABLED = f"535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [{HOST}]"
NOT_AUTHENTICATED = f"530 5.7.57 Client not authenticated to send mail. [{HOST}]"
SEND_AS_DENIED = ("554 5.2.252 SendAsDenied; {user} not allowed to send as {sender}; "
                  "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process "
                  "message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message.")
QUOTA_EXCEEDED = ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process "
                  "message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message.")
# RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF (RFC 4954 4: an AUTH initial
# response that would not fit is sent after the 334 instead). Exchange's limit is not documented otherwise.
MAX_COMMAND_LINE = 512
LINE_TOO_LONG = "500 5.5.2 Line too long"
ADDR_RE = re.compile(r"^(?:MAIL FROM|RCPT TO):\s*<([^>]*)>", re.I)


class Limits:
    """Per-mailbox submission log on the sandbox's clock: messages per minute, recipients per day."""

    def __init__(self, clock):
        self.clock = clock
        self._log: dict[str, deque] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    def admit(self, address: str, recipients: int) -> bool:
        now = self.clock()
        with self._lock:
            log = self._log.setdefault(address.lower(), deque())
            while log and log[0][0] <= now - 86400:
                log.popleft()
            last_minute = sum(1 for t, _ in log if t > now - 60)
            if last_minute >= RATE_PER_MINUTE or sum(n for _, n in log) + recipients > RECIPIENTS_PER_DAY:
                return False
            log.append((now, recipients))
            return True


class SmtpHandler(LineHandler):
    def greet(self) -> None:
        self.tls = False
        self.helo = False
        self.login = None
        self._reset()
        stamp = format_datetime(datetime.now(timezone.utc))
        self.send(f"220 {HOST} Microsoft ESMTP MAIL Service ready at {stamp}")

    def _reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpts: list[str] = []

    def command(self, line: str) -> None:
        if len(line.encode()) + 2 > MAX_COMMAND_LINE:
            self.send(LINE_TOO_LONG)
            return
        verb = line.split(" ", 1)[0].upper()
        handler = getattr(self, f"do_{verb}", None)
        if handler is None:
            self.send(f"500 5.3.3 Unrecognized command '{verb[:20]}'")
            return
        try:
            handler(line[len(verb):].strip())
        except (ValueError, IndexError, KeyError):
            self.send("501 5.5.4 Invalid arguments")

    def do_EHLO(self, arg: str) -> None:
        self.helo = True
        self._reset()
        lines = [f"{HOST} Hello [{self.client_address[0]}]", "SIZE 157286400", "PIPELINING", "DSN",
                 "ENHANCEDSTATUSCODES"]
        lines += ["AUTH LOGIN XOAUTH2"] if self.tls else ["STARTTLS"]
        lines += ["8BITMIME", "SMTPUTF8"]          # (Exchange also offers BINARYMIME, CHUNKING: not here)
        self.send("\r\n".join(f"250-{x}" for x in lines[:-1]) + f"\r\n250 {lines[-1]}")

    def do_HELO(self, arg: str) -> None:
        self.helo = True
        self._reset()
        self.send(f"250 {HOST} Hello [{self.client_address[0]}]")

    def do_STARTTLS(self, arg: str) -> None:
        if self.tls:
            self.send("503 5.5.2 Only one STARTTLS command can be issued per session")
            return
        self.send("220 2.0.0 SMTP server ready")
        self.start_tls()
        self.tls, self.helo, self.login = True, False, None
        self._reset()

    def do_AUTH(self, arg: str) -> None:
        mech, _, initial = arg.partition(" ")
        if not self.helo:
            self.send("503 5.5.2 Send hello first")
        elif not self.tls or mech.upper() not in ("XOAUTH2", "LOGIN"):
            self.send(f"504 5.7.4 Unrecognized authentication type [{HOST}]")
        elif self.login is not None:
            self.send("503 5.5.2 Already authenticated")
        elif mech.upper() == "LOGIN":
            for prompt in ("Username:", "Password:")[1 if initial else 0:]:
                self.send("334 " + base64.b64encode(prompt.encode()).decode())
                if self.readline() is None:
                    return
            self.send(BASIC_DISABLED)
        else:
            if not initial:
                self.send("334 ")
                raw = self.readline()
                if raw is None:
                    return
                initial = raw.decode("ascii", "replace").strip()
            self._xoauth2(initial)

    def _xoauth2(self, blob: str) -> None:
        login = xoauth2(self.server.sandbox, blob, "smtp")
        if login.problem == "token":
            self.send(AUTH_FAILED)        # Exchange's documented failure: a direct 535 5.7.3, no error challenge
        elif login.problem in ("smtp_tenant", "smtp_mailbox"):
            self.send(SMTP_AUTH_DISABLED.format("Tenant" if login.problem == "smtp_tenant" else "Mailbox"))
        else:
            self.login = login
            self.send(AUTH_OK)

    def do_MAIL(self, arg: str) -> None:
        m = ADDR_RE.match("MAIL " + arg)
        if not self.helo:
            self.send("503 5.5.2 Send hello first")
        elif self.login is None:
            self.send(NOT_AUTHENTICATED)
        elif self.mail_from is not None:
            self.send("503 5.5.2 Sender already specified")
        elif m is None:
            self.send("501 5.5.4 Invalid arguments")
        else:
            self.mail_from = m.group(1)
            self.send("250 2.1.0 Sender OK")

    def do_RCPT(self, arg: str) -> None:
        m = ADDR_RE.match("RCPT " + arg)
        if self.mail_from is None:
            self.send("503 5.5.2 Need mail command")
        elif m is None or "@" not in m.group(1):
            self.send("501 5.1.3 Invalid address")
        else:
            self.rcpts.append(m.group(1))
            self.send("250 2.1.5 Recipient OK")

    def do_DATA(self, arg: str) -> None:
        if self.mail_from is None:
            self.send("503 5.5.2 Need mail command")
            return
        if not self.rcpts:
            self.send("503 5.5.2 Need rcpt command")
            return
        self.send("354 Start mail input; end with <CRLF>.<CRLF>")
        lines = []
        while True:
            line = self.rfile.readline(self.MAX_LINE)
            if not line:
                self.closing = True
                return
            if line.rstrip(b"\r\n") == b".":
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        self.send(self._submit(b"".join(lines)))
        self._reset()

    def _submit(self, raw: bytes) -> str:
        sb, login = self.server.sandbox, self.login
        msg = from_mime(raw, self.mail_from)
        for address in dict.fromkeys(a for a in (self.mail_from, msg.sender) if a):
            sender = sb.tenant.mailbox(address)
            if sender is None or not may_send_as(sender, login.mailbox.address, login.actor):
                return SEND_AS_DENIED.format(user=login.mailbox.address, sender=address)
        if not sb.smtp_limits.admit(login.mailbox.address, len(self.rcpts)):
            return QUOTA_EXCEEDED
        deliver(sb.tenant, msg, self.rcpts)
        return f"250 2.0.0 OK {msg.internet_message_id} [Hostname={HOST}]"

    def do_RSET(self, arg: str) -> None:
        self._reset()
        self.send("250 2.0.0 Resetting")

    def do_NOOP(self, arg: str) -> None:
        self.send("250 2.0.0 OK")

    def do_QUIT(self, arg: str) -> None:
        self.send("221 2.0.0 Service closing transmission channel")
        self.closing = True


def start(sandbox) -> LineServer:
    return LineServer(sandbox, SmtpHandler, implicit_tls=False)
