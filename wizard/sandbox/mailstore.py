"""What SMTP, IMAP and Graph share: folders of a mailbox, delivery, MIME in
and out, SASL XOAUTH2 token checks, and a threaded line server on 127.0.0.1."""

from __future__ import annotations

import base64
import copy
import email
import email.policy
import hashlib
import socket
import socketserver
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime

from wizard.sandbox.identity import EXCHANGE
from wizard.sandbox.tokens import TokenError, verify_jwt
from wizard.sandbox.tenant import Mailbox, Message, Tenant

HOST = "SANDBOX01.outlook.office365.com"      # the server name in protocol replies
LOCK = threading.RLock()                       # guards mailbox folders across handler threads
# Graph well-known folder names -> display names (also the IMAP names)
WELL_KNOWN = {"inbox": "Inbox", "sentitems": "Sent Items", "deleteditems": "Deleted Items",
              "drafts": "Drafts", "junkemail": "Junk Email", "archive": "Archive"}
EXCHANGE_AUDIENCES = (EXCHANGE, "https://outlook.office.com", "00000002-0000-0ff1-ce00-000000000000")


# -- folders and delivery -------------------------------------------------------------

def folder(mb: Mailbox, name: str, create: bool = False) -> list[Message] | None:
    """The messages of a folder by display name or well-known name (case-insensitive)."""
    key = name.strip().lower()
    if key == "inbox":
        return mb.inbox
    if key in ("sentitems", "sent items"):
        return mb.sent
    display = WELL_KNOWN.get(key, name.strip())
    for k, items in mb.folders.items():
        if k.lower() == display.lower():
            return items
    if create or key in WELL_KNOWN or display in WELL_KNOWN.values():
        return mb.folders.setdefault(display, [])
    return None


def folder_names(mb: Mailbox) -> list[str]:
    names = list(WELL_KNOWN.values())
    return names + [k for k in mb.folders if k not in names]


# Child folders are kept under their path ("Inbox/Orders"): "/" is the hierarchy
# delimiter, as in the sandbox's IMAP LIST; a name without it is a top-level folder.
SEP = "/"


def parent_of(name: str) -> str | None:
    """The parent folder of a folder path; None for a top-level folder."""
    return name.rsplit(SEP, 1)[0] if SEP in name else None


def child_names(mb: Mailbox, parent: str | None) -> list[str]:
    """The folders directly under ``parent`` (None: the top level)."""
    if parent is None:
        return [n for n in folder_names(mb) if SEP not in n]
    prefix = parent.lower() + SEP
    return [n for n in folder_names(mb) if n.lower().startswith(prefix) and SEP not in n[len(prefix):]]


# -- item versions: every update changes an item's change key (Graph changeKey/@odata.etag) --

_CHANGES: dict[str, tuple[int, str]] = {}      # item id -> (times updated, when last updated)


def touch(m: Message) -> None:
    """Record an update of ``m`` (PATCH, an attachment added...): its change key and
    lastModifiedDateTime change, as Exchange's do on every save."""
    with LOCK:
        count = _CHANGES.get(m.id, (0, ""))[0]
        _CHANGES[m.id] = (count + 1, now_iso())


def change_key(m: Message) -> str:
    count = _CHANGES.get(m.id, (0, ""))[0]
    state = f"{m.id}|{count}|{m.is_read}|{m.subject}|{sorted(m.flags)}|{len(m.attachments)}".encode()
    return "CQAAABYAAA" + base64.b64encode(hashlib.sha1(state).digest()[:9]).decode()


def last_modified(m: Message) -> str:
    return _CHANGES.get(m.id, (0, ""))[1] or m.received


def folder_of(mb: Mailbox, message_id: str) -> tuple[str, Message] | None:
    for name in folder_names(mb):
        for m in folder(mb, name) or []:
            if m.id == message_id:
                return name, m
    return None


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A message ID shaped like Exchange's REST IDs (URL-safe base64, may end in '=')."""
    return "AAMkAD" + base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:9]).decode()


def deliver(tenant: Tenant, msg: Message, recipients: list[str], save_sent: bool = True) -> None:
    """Put a copy into each tenant recipient's inbox (others leave the tenant), and one in Sent Items."""
    with LOCK:
        seen = set()
        for addr in recipients:
            box = tenant.mailbox(addr)
            if box is None or addr.lower() in seen:
                continue
            seen.add(addr.lower())
            box.inbox.append(copy.deepcopy(msg))
            box.inbox[-1].id, box.inbox[-1].uid = new_id(), 0
        sender = tenant.mailbox(msg.sender)
        if save_sent and sender is not None:
            sent = copy.deepcopy(msg)
            sent.id, sent.is_read = new_id(), True
            sender.sent.append(sent)


def may_send_as(sender: Mailbox, address: str, actor: str) -> bool:
    """May the authenticated mailbox ``address`` (acting for user or app ``actor``) send as ``sender``?"""
    rights = {s.lower() for s in sender.send_as}
    return sender.address.lower() == address.lower() or address.lower() in rights or actor.lower() in rights


# -- MIME ----------------------------------------------------------------------------

def from_mime(raw: bytes, envelope_from: str = "") -> Message:
    """A tenant Message from RFC 5322 bytes (attachments kept)."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    sender = (getaddresses([str(parsed.get("From", ""))]) or [("", envelope_from)])[0][1] or envelope_from
    to = [a for _, a in getaddresses([str(v) for v in parsed.get_all("To", [])]) if a]
    cc = [a for _, a in getaddresses([str(v) for v in parsed.get_all("Cc", [])]) if a]
    body_part = parsed.get_body(("plain", "html"))
    body = body_part.get_content().replace("\r\n", "\n") if body_part is not None else ""
    attachments = []
    for part in parsed.iter_attachments():
        attachments.append({"name": part.get_filename() or "attachment", "content_type": part.get_content_type(),
                            "content": part.get_payload(decode=True) or b""})
    return Message(id=new_id(), sender=sender, to=to, cc=cc, subject=str(parsed.get("Subject", "")), body=body,
                   received=now_iso(), attachments=attachments,
                   body_type="html" if body_part is not None and body_part.get_content_subtype() == "html" else "text",
                   internet_message_id=str(parsed.get("Message-ID", "")) or make_msgid(domain=HOST.lower()))


def mime_draft(raw: bytes) -> tuple[Message, list[str]]:
    """(message, its Bcc addresses) from RFC 5322 bytes a client hands over as they are (Graph's MIME
    sendMail and drafts, EWS CreateItem with MimeContent). ValueError: no header at all (not MIME)."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    if not parsed.keys():
        raise ValueError("no headers")
    m = from_mime(raw)
    return m, [a for _, a in getaddresses([str(v) for v in parsed.get_all("Bcc", [])]) if a]


def to_mime(m: Message) -> bytes:
    """The message as RFC 5322 bytes with CRLF line ends; the same bytes every time."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = m.sender
    if m.to:
        msg["To"] = ", ".join(m.to)
    if m.cc:
        msg["Cc"] = ", ".join(m.cc)
    msg["Subject"] = m.subject
    msg["Date"] = format_datetime(received_dt(m))
    msg["Message-ID"] = message_id_header(m)
    msg["MIME-Version"] = "1.0"
    msg.set_content(m.body, subtype="html" if m.body_type == "html" else "plain")
    for a in m.attachments:
        maintype, _, subtype = (a.get("content_type") or "application/octet-stream").partition("/")
        inline = {"disposition": "inline", "cid": f"<{a['content_id']}>"} if a.get("is_inline") and \
            a.get("content_id") else {}         # Graph's isInline and contentId: what the HTML's cid: finds
        msg.add_attachment(a["content"], maintype=maintype, subtype=subtype or "octet-stream", filename=a["name"],
                           **inline)
    if msg.is_multipart():
        msg.set_boundary("_mw_" + hashlib.sha1(m.id.encode()).hexdigest()[:24])
    return msg.as_bytes()


def message_id_header(m: Message) -> str:
    """The message's Internet Message-ID ("<...@...>"), derived from its id when it has none."""
    return m.internet_message_id or f"<{hashlib.sha1(m.id.encode()).hexdigest()}@{HOST.lower()}>"


def received_dt(m: Message) -> datetime:
    try:
        return datetime.strptime(m.received, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        try:
            return parsedate_to_datetime(m.received)
        except (TypeError, ValueError):
            return datetime(1970, 1, 1, tzinfo=timezone.utc)


# -- SASL XOAUTH2 -------------------------------------------------------------------------

@dataclass
class Login:
    mailbox: Mailbox | None = None
    actor: str = ""                 # the user's UPN (delegated) or the app's client ID (app-only)
    problem: str | None = None      # None (signed in), "token", "smtp_tenant", "smtp_mailbox", "imap_disabled"


def xoauth2(sb, blob: str | bytes, protocol: str) -> Login:
    """Check a base64 XOAUTH2 initial response for ``protocol`` "smtp" or "imap"."""
    try:
        text = base64.b64decode(blob, validate=True).decode()
        fields = dict(p.split("=", 1) for p in text.split("\x01") if p)
        user, auth = fields["user"], fields["auth"]
    except (ValueError, KeyError, UnicodeDecodeError):
        return Login(problem="token")
    if not auth.lower().startswith("bearer "):
        return Login(problem="token")
    try:
        claims = verify_jwt(auth[7:].strip(), sb.material)
    except TokenError:
        return Login(problem="token")
    tenant = sb.tenant
    if claims.get("exp", 0) < time.time() - 300 or claims.get("tid", "").lower() != tenant.tenant_id.lower() \
            or claims.get("aud", "").rstrip("/") not in EXCHANGE_AUDIENCES:
        return Login(problem="token")
    mb = tenant.mailbox(user)
    if mb is None:
        return Login(problem="token")
    full = {a.lower() for a in mb.full_access}
    users = full | {a.lower() for a in mb.send_as}      # as EWS: Send As holders also open the mailbox
    if "scp" in claims:
        actor = claims.get("upn", "")
        needed = "SMTP.Send" if protocol == "smtp" else "IMAP.AccessAsUser.All"
        ok = needed in claims["scp"].split() and (actor.lower() == mb.address.lower() or actor.lower() in users)
    else:
        actor = claims.get("appid", "")
        app = tenant.app(actor)
        needed = "SMTP.SendAsApp" if protocol == "smtp" else "IMAP.AccessAsApp"
        ok = (needed in (claims.get("roles") or []) and app is not None and app.exchange_service_principal
              and actor.lower() in full and actor.lower() not in {a.lower() for a in mb.scoped_out_apps})
    if not ok:
        return Login(problem="token")
    if protocol == "smtp":
        if mb.smtp_auth_disabled is True or (mb.smtp_auth_disabled is None and tenant.smtp_auth_disabled):
            return Login(mb, actor, "smtp_mailbox" if mb.smtp_auth_disabled else "smtp_tenant")
    elif mb.imap_disabled:
        return Login(mb, actor, "imap_disabled")
    return Login(mb, actor)


# -- a threaded line server ----------------------------------------------------------------

def server_context(material) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(material.cert_path, material.key_path)
    return ctx


class LineServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 64         # listen backlog, as the HTTPS server's: bursts of parallel logins

    def __init__(self, sandbox, handler, implicit_tls: bool):
        self.sandbox, self.implicit_tls = sandbox, implicit_tls
        self.ctx = server_context(sandbox.material)
        self.handlers: set = set()
        self.handlers_lock = threading.Lock()
        super().__init__((sandbox.host, 0), handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02},
                                       name=f"sandbox-{handler.__name__}-{self.port}", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.shutdown()
        with self.handlers_lock:
            handlers = list(self.handlers)
        for h in handlers:
            try:
                h.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        self.thread.join(timeout=2)

    def handle_error(self, request, client_address) -> None:
        pass


class LineHandler(socketserver.BaseRequestHandler):
    """Reads CRLF lines; subclasses implement greet() and command(line).

    ``Sandbox.latency`` delays each reply: the greeting and the answer to each
    command line (not the lines a command reads itself, such as DATA's)."""
    MAX_LINE = 1 << 20

    def setup(self) -> None:
        self.closing = False
        with self.server.handlers_lock:
            self.server.handlers.add(self)
        self.request.settimeout(30)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.server.implicit_tls:
                self.request = self.server.ctx.wrap_socket(self.request, server_side=True)
            self.rfile = self.request.makefile("rb")
        except OSError:
            self.closing = True

    def start_tls(self) -> None:
        self.request = self.server.ctx.wrap_socket(self.request, server_side=True)
        self.rfile = self.request.makefile("rb")

    def finish(self) -> None:
        with self.server.handlers_lock:
            self.server.handlers.discard(self)

    def send(self, text: str | bytes) -> None:
        data = text if isinstance(text, bytes) else (text + "\r\n").encode()
        if getattr(self, "out", None) is not None:
            self.out.append(data)           # collected while a command holds the store lock
        else:
            self.request.sendall(data)

    def readline(self) -> bytes | None:
        line = self.rfile.readline(self.MAX_LINE)
        return line.rstrip(b"\r\n") if line else None

    def wait_latency(self) -> None:
        sb = self.server.sandbox
        if sb.latency:
            sb._stopping.wait(sb.latency)       # stop() ends the wait at once

    def handle(self) -> None:
        if self.closing:
            return
        try:
            self.wait_latency()
            self.greet()
            while not self.closing:
                line = self.readline()
                if line is None:
                    break
                self.wait_latency()
                self.command(line.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
