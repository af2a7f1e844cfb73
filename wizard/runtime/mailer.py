"""``Mailer``: send and fetch mail with a saved mailwizard config.

    from wizard.runtime import Mailer, Attachment, MailError

    with Mailer.from_config() as mailer:            # None -> --config / $MAILWIZARD_CONFIG / user config dir
        mailer.send("customer@example.com", "Invoice 1001", "Please find the invoice attached.",
                    cc=["sales@contoso.com"], attachments=["/tmp/invoice-1001.pdf",
                    Attachment("order.csv", "text/csv", b"id;qty\\n1;2\\n")])
        mailer.send("ops@contoso.com", "Web order", "...", sender="WEBSHOP")   # a [[users]] override by name
        for msg in mailer.fetch("orders@contoso.com", limit=50):         # unread inbox mail, oldest first
            handle(msg.subject, msg.body_text, msg.attachments)
            mailer.mark_processed("orders@contoso.com", msg)              # read + moved to "Processed"
        problems = mailer.validate_accounts()   # {address: None | Diagnosis}, checked concurrently

The protocol follows ``[outgoing] protocol`` and ``[incoming] protocol``:
``ews`` (exchangelib), ``graph`` (Microsoft Graph REST), ``smtp`` (STARTTLS +
XOAUTH2, outgoing only), ``imap`` (TLS + XOAUTH2, incoming only). Every
failure raises ``MailError`` whose ``.diagnosis`` has ``code``, ``cause`` and
``fix`` in plain words; no secret or token is ever put in a message or log.
Sending waits (never fails) to stay under Exchange Online's limits: 30
messages a minute and 10,000 recipients a day per mailbox.

No Textual import; msal and exchangelib are imported when first needed.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

from wizard.diagnosis.catalogue import Diagnosis, lookup
from wizard.runtime.model import (INCOMING, Attachment, Message, MailError, as_attachment, diagnosis_of, error,
                                  recipients)
from wizard.runtime.pacing import Pacer
from wizard.runtime.tokens import SignIn, TokenProvider

OUTGOING = ("ews", "graph", "smtp")
PROCESSED_FOLDER = "Processed"


class Mailer:
    """Send and fetch mail with one config. Thread-safe; reuse one Mailer (it
    keeps the token, the HTTP sessions and the pacing state)."""

    def __init__(self, cfg, *, clock=time.time, sleep=time.sleep, pacer: Pacer | None = None,
                 tokens: TokenProvider | None = None, processed_folder: str | None = PROCESSED_FOLDER,
                 max_workers: int = 32, prompt=None, token_cache: str | os.PathLike | None = None,
                 save_copy: bool = False):
        self.cfg = cfg
        self.clock = clock
        self.sleep = sleep
        self.tokens = tokens or TokenProvider(cfg, clock=clock, sleep=sleep, prompt=prompt, cache_path=token_cache)
        if pacer is None:
            from wizard.runtime.tokens import cache_dir
            shared = cache_dir() / "pacing.json" if clock is time.time else None   # shared by processes
            pacer = Pacer(clock=clock, sleep=sleep, state_path=shared)
        self.pacer = pacer
        self.processed_folder = processed_folder
        self.max_workers = max_workers
        self.save_copy = save_copy
        self._transports: dict[tuple, object] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, **kwargs) -> "Mailer":
        """Load and validate the config at ``path`` (None: ``config_io.resolve_path``).
        A broken config raises MailError with code ``config.invalid``, naming file, line and field."""
        from wizard.config import environment
        from wizard.config.schema import ConfigError
        from wizard.config.files import load, resolve_path
        p = resolve_path(path)
        try:
            cfg = load(p)
        except ConfigError as exc:
            raise MailError(Diagnosis("config.invalid", exc.render(),
                                      "Correct the named field in the file, or run `mailwizard` to fix it.",
                                      None, None)) from None
        for problem in environment.problems(cfg):       # e.g. REQUESTS_CA_BUNDLE naming no file
            raise MailError(Diagnosis("config.invalid", problem.render(),
                                      environment.fix(problem.field), None, None))
        return cls(cfg, **kwargs)

    # -- transports -----------------------------------------------------------------------
    def _transport(self, protocol: str, direction: str):
        server, port = self._endpoint(protocol, direction)
        key = (protocol, server, port)
        with self._lock:
            t = self._transports.get(key)
            if t is None:
                t = self._transports[key] = self._make(protocol, server, port)
            return t

    def _endpoint(self, protocol: str, direction: str) -> tuple[str, int]:
        from wizard.config.endpoints import mail_endpoint
        _, host, port = mail_endpoint(self.cfg, direction)
        return ("", 0) if protocol == "graph" else (host, port)

    def _make(self, protocol: str, server: str, port: int):
        if protocol == "ews":
            from wizard.runtime.ews import EwsTransport
            return EwsTransport(self.cfg, self.tokens, server=server, port=port, max_connections=self.max_workers)
        if protocol == "graph":
            from wizard.runtime.graph import GraphTransport
            return GraphTransport(self.cfg, self.tokens, clock=self.clock, sleep=self.sleep)
        if protocol == "smtp":
            from wizard.runtime.smtp import SmtpTransport
            return SmtpTransport(self.cfg, self.tokens, server=server, port=port, max_workers=self.max_workers)
        if protocol == "imap":
            from wizard.runtime.imap import ImapTransport
            return ImapTransport(self.cfg, self.tokens, server=server, port=port, max_workers=self.max_workers)
        raise AssertionError(protocol)

    def _outgoing(self):
        p = self.cfg.outgoing.protocol
        if p not in OUTGOING:
            raise error("config.invalid", service_message=f"[outgoing] protocol = \"{p}\" cannot send mail; "
                        f"use one of: {', '.join(OUTGOING)}")
        return self._transport(p, "out")

    def _incoming(self):
        p = self.cfg.incoming.protocol
        if p not in INCOMING:
            raise error("config.invalid", service_message=f"[incoming] protocol = \"{p}\" cannot read mail; "
                        f"use one of: {', '.join(INCOMING)}")
        return self._transport(p, "in")

    # -- who sends / reads -------------------------------------------------------------------
    def _sender(self, sender: str | None) -> tuple[SignIn, str]:
        """(sign-in, from address) for send(sender=...)."""
        if not sender:
            if not self.cfg.outgoing.sender:
                raise error("config.invalid", service_message="[outgoing] sender is empty")
            return self.tokens.default_signin(), self.cfg.outgoing.sender
        for u in self.cfg.users:
            if u.name and u.name.lower() == sender.lower():
                if u.flow in ("client_secret", "certificate"):
                    if not self.tokens.default_signin().app_only:
                        raise error("config.invalid", service_message=f"[[users]] {u.name}: flow {u.flow} uses the "
                                    f"app's own credential, but [auth] flow is {self.cfg.auth.flow}; give the user "
                                    "flow = \"password\" with its user name and password")
                    who = self.tokens.default_signin()
                else:
                    who = SignIn(u.flow, u.username, u.password)
                address = u.sender or u.username or self.cfg.outgoing.sender
                return who, address
        if "@" in sender:
            return self.tokens.default_signin(), sender
        known = ", ".join(u.name for u in self.cfg.users) or "none"
        raise error("config.invalid", service_message=f"no [[users]] entry named {sender!r} (known: {known})")

    def _reader(self, account: str):
        for acc in self.cfg.incoming.accounts:
            if acc.address.lower() == account.lower():
                return self.tokens.signin_for_account(acc), acc.address
        return self.tokens.default_signin(), account

    # -- public API ------------------------------------------------------------------------------
    def send(self, to, subject: str, body: str, *, cc=None, attachments=(), sender: str | None = None) -> None:
        """Send one message. ``to``/``cc``: an address, "a, b", or a list.
        ``attachments``: file paths and/or ``Attachment`` objects. ``sender``: None
        (the config's sender), a ``[[users]]`` name (that user's own sign-in), or an address."""
        to_list, cc_list = recipients(to), recipients(cc)
        if not to_list:
            raise error("config.invalid", service_message="no recipient given")
        files = [as_attachment(a) for a in attachments]
        who, address = self._sender(sender)
        transport = self._outgoing()
        self.sign_in(who)       # first: a send refused at sign-in never counts towards the sending limits
        with self.pacer.sending(address, len(to_list) + len(cc_list)):
            transport.send(who, address, to_list, cc_list, subject, body or "", files, save_copy=self.save_copy)

    def transport(self, protocol: str | None = None):
        """The outgoing protocol's transport (``runtime.graph.GraphTransport``, ``runtime.smtp.SmtpTransport``
        or ``runtime.ews.EwsTransport``), made once and kept: for callers that send MIME as it is (the relay).
        ``protocol`` "graph" or "ews": that API's transport with the same sign-in although ``[outgoing]
        protocol`` is another (the relay finishes drafts made before the protocol changed). EWS then goes to
        ``[incoming] server`` when one is set for EWS or Graph, else the cloud's Exchange host on 443."""
        p = self.cfg.outgoing.protocol
        if protocol is None or protocol == p:
            return self._outgoing()
        if protocol == "graph":
            return self._transport("graph", "out")
        if protocol != "ews":
            raise error("config.invalid", service_message=f"no drafts over {protocol!r}: only graph or ews")
        i = self.cfg.incoming
        server, port = (i.server.lower(), int(i.port or 443)) if i.protocol in ("ews", "graph") and i.server \
            else (self.cfg.cloud.exchange_host.lower(), 443)
        with self._lock:
            t = self._transports.get(("ews", server, port))
            if t is None:
                t = self._transports[("ews", server, port)] = self._make("ews", server, port)
            return t

    def sign_in(self, who: SignIn | None = None, api: str | None = None) -> str:
        """The access token of ``who`` (default: the config's sign-in) for ``api``
        (default: the outgoing protocol's). A failure names the user who signed in
        (a [[users]] override's own user name, not [auth] username)."""
        from wizard.runtime.tokens import api_of
        who = who or self.tokens.default_signin()
        try:
            return self.tokens.token(api or api_of(self.cfg.outgoing.protocol), who)
        except MailError as exc:
            raise MailError(signin_diagnosis(exc.diagnosis, self.cfg, who), account=exc.account) from None

    def sender_of(self, sender: str | None = None) -> tuple[SignIn, str]:
        """(sign-in, from address) that ``send(sender=...)`` uses: the config's
        own, a [[users]] entry's by name, or the config's sign-in for an address."""
        return self._sender(sender)

    def reader_of(self, account: str) -> tuple[SignIn, str]:
        """(sign-in, mailbox address) that ``fetch(account)`` uses."""
        return self._reader(account)

    def fetch(self, account: str, *, since: datetime | None = None, limit: int = 50,
              unprocessed_only: bool = True) -> list[Message]:
        """Messages in the inbox of ``account``, oldest first: unread ones only
        (default), received at or after ``since`` when given, at most ``limit``."""
        who, address = self._reader(account)
        return self._incoming().fetch(address, who, since, limit, unprocessed_only)

    def mark_processed(self, account: str, message_or_id) -> None:
        """Mark a fetched message read and move it to the "Processed" folder
        (created when missing; ``processed_folder=None`` only marks it read)."""
        who, address = self._reader(account)
        message_id = message_or_id.id if isinstance(message_or_id, Message) else str(message_or_id)
        self._incoming().mark_processed(address, who, message_id, self.processed_folder)

    def check_account(self, account: str) -> None:
        """Raise MailError if the inbox of ``account`` cannot be opened."""
        who, address = self._reader(account)
        self._incoming().check(address, who)

    def validate_accounts(self) -> dict[str, Diagnosis | None]:
        """{address: None (ok) | Diagnosis} for every incoming account, checked
        concurrently (one token shared, a bounded pool)."""
        from wizard.runtime.poll import validate
        return validate(self, max_workers=self.max_workers)

    def close(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for t in transports:
            t.close()
        self.tokens.close()

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def signin_diagnosis(d: Diagnosis, cfg, who: SignIn) -> Diagnosis:
    """A sign-in failure told about the user who signed in: the catalogue fills
    {username} from [auth], which for a [[users]] override (WEBSHOP) is another
    account or none at all."""
    import copy
    from wizard.diagnosis.catalogue import CATALOGUE
    entry = CATALOGUE.get(d.code)
    if who.app_only or not who.username or entry is None or "{username}" not in entry.cause + entry.fix:
        return d
    own = copy.deepcopy(cfg)
    own.auth.flow, own.auth.username = who.flow, who.username
    told = lookup(d.code, cfg=own, service_message=d.service_message, trace_id=d.trace_id,
                  correlation_id=d.correlation_id)
    if who.username.lower() != (cfg.auth.username or "").lower():
        told.screen = "mail"        # a [[users]] entry: stage 4, F7
    return told


__all__ = ["Mailer", "Message", "Attachment", "MailError", "diagnosis_of"]
