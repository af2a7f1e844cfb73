"""The relay's SMTP submission side, on aiosmtpd (imported when the relay starts).

- AUTH PLAIN and LOGIN against ``[[relay.clients]]`` (scrypt hashes, ``wizard.relay.auth``); a wrong
  password gets ``535`` after a delay; ``MAIL`` before AUTH gets ``530`` (RFC 4954 section 6).
- AUTH lines (and the 334 responses) up to 12,288 octets (RFC 4954 section 4).
- TLS: with ``[relay] certificate`` STARTTLS (AUTH only after it), or implicit TLS (``tls = "implicit"``;
  aiosmtpd cannot tell that a connection is already wrapped, so AUTH is not tied to STARTTLS there).
  Without a certificate the relay listens on loopback only and offers AUTH in plain text.
- ``MAIL FROM`` and every header ``From:`` address must be among the client's senders (``553``); header
  addresses are read as UTF-8 (RFC 6532) or RFC 2047 encoded words.
- DATA (``read_data``): bare-LF lines taken at any size and stored with CRLF; only CRLF.CRLF ends it.
- Size: EHLO ``SIZE`` announces ``[relay] max_size_mb``; more gets ``552`` naming the limit. Mail the upstream
  can never take (Graph: text over one ~4 MB request once the attachments are out) gets ``552`` saying why.
- ``250`` after DATA only once the message and its journal are fsynced in the spool; no room: ``452``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
import warnings

from wizard.relay import auth
from wizard.relay.headers import addresses as _addresses, read as _headers
from wizard.relay.spool import SpoolFull

AUTH_LINE = 12288          # RFC 4954 section 4: "12288 octets is considered to be a sufficient line length limit"
MAX_RECIPIENTS = 500       # Exchange Online: 500 recipients per message
FAIL_DELAY = 1.0           # seconds before a 535, against guessing
_DUMMY = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32

log = logging.getLogger("mailwizard.relay")


class Handler:
    """aiosmtpd handler: checks senders, stores accepted mail in the spool."""

    def __init__(self, relay_cfg, spool, *, on_accept=None, log_line=None, refusal=None):
        self.relay = relay_cfg
        self.refusal = refusal      # (data, bcc) -> a 5xx reply for mail the upstream can never take, or None
        self.spool = spool
        self.on_accept = on_accept or (lambda mid: None)
        self.log_line = log_line or (lambda text: None)
        from concurrent.futures import ThreadPoolExecutor
        # the fsyncs of concurrent clients overlap here, off the event loop
        self._writers = ThreadPoolExecutor(max_workers=16, thread_name_prefix="relay-spool")

    # the authenticator aiosmtpd calls for PLAIN and LOGIN
    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword
        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name = auth_data.login.decode("utf-8", "replace")
        client = self.relay.client(name)
        ok = auth.verify(auth_data.password, client.password_hash if client else _DUMMY) and client is not None
        if not ok:
            self.log_line(f"refused AUTH for {name!r} from {session.peer[0] if session.peer else '?'}: "
                          "wrong user name or password")
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")
        return AuthResult(success=True, auth_data=client.name)

    def _client(self, session):
        return self.relay.client(session.auth_data or "") if session.auth_data else None

    def _allowed(self, client, address: str) -> bool:
        return client is not None and address.lower() in {s.lower() for s in client.senders}

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        client = self._client(session)
        if not self._allowed(client, address):
            allowed = ", ".join(client.senders) if client else "none"
            if address in ("", "<>"):     # aiosmtpd hands the null reverse-path over as "<>"
                return (f"553 5.7.1 The null sender <> (a bounce or other notification) cannot be relayed: "
                        f"client '{session.auth_data}' sends only as {allowed}")
            return (f"553 5.7.1 Sender <{address}> is not allowed for client '{session.auth_data}' "
                    f"(allowed: {allowed})")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients: at most {MAX_RECIPIENTS} per message (Exchange Online's limit)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        client = self._client(session)
        data = envelope.original_content or b""
        try:
            headers = _headers(data)
            froms = _addresses(headers, "From")
            listed = {a.lower() for a in _addresses(headers, "To", "Cc", "Bcc")}
            message_id = str(headers.get("Message-ID", "") or "").strip()
        except Exception as exc:       # headers nobody can read: refuse with the reason, never crash
            return f"554 5.6.0 The message's header cannot be read ({type(exc).__name__}); nothing was queued"
        if not froms:
            return "554 5.6.0 The message has no From: header; nothing was queued"
        bad = [a for a in froms if not self._allowed(client, a)]
        if bad:
            return (f"553 5.7.1 Header From <{bad[0]}> is not allowed for client '{session.auth_data}' "
                    f"(allowed: {', '.join(client.senders) if client else 'none'})")
        journal = {"client": client.name, "mail_from": envelope.mail_from, "rcpts": list(envelope.rcpt_tos),
                   "bcc": [r for r in envelope.rcpt_tos if r.lower() not in listed], "sender": froms[0],
                   "message_id": message_id, "peer": session.peer[0] if session.peer else ""}
        loop = asyncio.get_running_loop()
        if self.refusal is not None:    # e.g. Graph: text over one ~4 MB request (parsing it: off the event loop)
            refused = await loop.run_in_executor(self._writers, self.refusal, data, journal["bcc"])
            if refused:
                self.log_line(f"refused a message from {client.name}: {refused}")
                return refused
        try:
            mid = await loop.run_in_executor(self._writers, self.spool.store, data, journal)
        except SpoolFull:
            self.log_line(f"refused a message from {client.name}: the spool's disk is full")
            return "452 4.3.1 Insufficient system storage: the relay's spool is full; try again later"
        except OSError as exc:
            self.log_line(f"refused a message from {client.name}: the spool cannot be written ({exc.strerror})")
            return "451 4.3.0 The relay cannot store the message right now; try again later"
        self.on_accept(mid)
        return f"250 2.0.0 OK queued as {mid}"


async def read_data(reader: asyncio.StreamReader, size_limit: int, line_limit: int) -> tuple[bytearray, str]:
    """DATA's content up to the line "." (RFC 5321 section 4.1.1.4), dot-unstuffed (section 4.5.2), as one
    buffer with CRLF line ends; (content, "") or (empty, the refusal) once read to the end.

    Lines may end in a bare LF (Python's ``sendmail(..., msg.as_bytes())`` sends them): each is stored with
    CRLF, whatever the message's size (bare LFs Exchange Online passes on bounce with 550 5.6.11 from a
    server without BDAT). Only CRLF "." CRLF ends DATA: a "." line after a bare LF, or ending in one, is
    content (no SMTP smuggling). ``size_limit`` counts the octets received; ``line_limit`` is the reader's
    line limit, each line counted by itself."""
    out = bytearray()
    received, problem = 0, ""
    line_start, crlf_before, cr = True, True, False     # the 354 reply ends a line
    while True:
        try:
            piece = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:        # a line longer than line_limit: read on to the end
            piece = await reader.read(exc.consumed)
            received += len(piece)
            problem = problem or (f"500 5.5.6 Line too long: this relay takes lines of up to {line_limit - 2} "
                                  "octets (RFC 5321 section 4.5.3.1.6 asks for at most 1000)")
            out = bytearray()
            line_start, cr = False, piece.endswith(b"\r")
            continue
        if line_start and crlf_before and piece == b".\r\n":
            return out, problem
        received += len(piece)
        crlf = piece.endswith(b"\r\n") or (piece == b"\n" and not line_start and cr)
        if size_limit and received > size_limit and not problem:
            problem, out = "552 Error: Too much mail data", bytearray()
        if not problem:
            start = 1 if line_start and piece.startswith(b".") and piece not in (b".\r\n", b".\n") else 0
            out += memoryview(piece)[start:len(piece) - (2 if crlf else 1)]
            out += b"\r\n"
        line_start, crlf_before = True, crlf


def _smtp_class():
    from aiosmtpd.smtp import SMTP, syntax

    class RelaySMTP(SMTP):
        line_length_limit = AUTH_LINE + 2       # the stream's line limit (AUTH responses, long DATA lines)
        fail_delay = FAIL_DELAY

        def __init__(self, *args, size_limit: int = 0, **kwargs):
            super().__init__(*args, **kwargs)
            self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
            self.command_size_limits["AUTH"] = AUTH_LINE
            self.size_limit = size_limit

        @syntax("DATA")
        async def smtp_DATA(self, arg: str) -> None:
            """aiosmtpd's DATA (1.4) with ``read_data``: aiosmtpd reads lines up to CRLF only, so a bare-LF
            message counted as one line and got "500 Line too long" from about 12 KB on."""
            if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
                return
            if not self.envelope.rcpt_tos:
                await self.push("503 Error: need RCPT command")
                return
            if arg:
                await self.push("501 Syntax: DATA")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            try:
                content, problem = await read_data(self._reader, self.data_size_limit, self.line_length_limit)
            except asyncio.CancelledError:               # the connection went during DATA
                self._writer.close()
                raise
            except asyncio.IncompleteReadError:
                self._writer.close()
                return
            if problem:
                await self.push(problem)
                self._set_post_data_state()
                return
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status if isinstance(status, str) else "250 OK")

        async def push(self, status):
            text = status.decode("ascii", "replace") if isinstance(status, bytes) else status
            if text.startswith("535"):
                await asyncio.sleep(self.fail_delay)
            elif text.startswith("552 Error"):
                mb = self.size_limit / (1024 * 1024)
                status = (f"552 5.3.4 Message too big: this relay takes at most {self.size_limit} bytes "
                          f"({mb:g} MB)")
            return await super().push(status)

    return RelaySMTP


def tls_context(relay_cfg) -> ssl.SSLContext | None:
    if not relay_cfg.certificate:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(relay_cfg.certificate, relay_cfg.key or None)
    return ctx


def make_controller(relay_cfg, handler: Handler):
    """A started-on-demand aiosmtpd Controller for ``[relay]`` (call ``.start()``; ``.port`` is the bound port)."""
    from aiosmtpd.controller import Controller

    host, port = relay_cfg.host_port()
    ctx = tls_context(relay_cfg)
    implicit = ctx is not None and relay_cfg.tls == "implicit"
    smtp_cls = _smtp_class()
    kwargs = dict(data_size_limit=relay_cfg.max_size, size_limit=relay_cfg.max_size, enable_SMTPUTF8=True,
                  hostname=socket.gethostname() or "mailwizard-relay", ident="mailwizard relay",
                  auth_required=True, auth_require_tls=ctx is not None and not implicit,
                  tls_context=None if implicit else ctx, require_starttls=ctx is not None and not implicit,
                  authenticator=handler.authenticate, timeout=300)

    class RelayController(Controller):
        def factory(self):
            with warnings.catch_warnings():     # "Requiring AUTH while not requiring TLS": loopback only, by design
                warnings.simplefilter("ignore")
                return smtp_cls(self.handler, **kwargs)

        def _trigger_server(self):
            if self.server is not None and self.server.sockets:
                self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

    logging.getLogger("mail.log").setLevel(logging.ERROR)        # aiosmtpd's own per-command log and warnings
    warnings.filterwarnings("ignore", message=r"Session\.login_data is deprecated")
    return RelayController(handler, hostname=host, port=port, ssl_context=ctx if implicit else None,
                           ready_timeout=10.0)
