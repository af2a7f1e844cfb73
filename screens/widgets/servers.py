"""The server fields of the mail stage, per protocol: EWS and SMTP get a server and a
port, Graph none (its URL comes from the cloud), IMAP its own incoming server and port.
Defaults come from ``wizard.config.clouds`` for the config's cloud."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from wizard.config import fields as f
from wizard.config.clouds import IMAP_PORT, SMTP_PORT, resolve

from screens.widgets.fields import CheckedField


def _field(screen, key: str, label: str, check, value, help_: str, **kwargs) -> CheckedField:
    raw = screen.app.drafts.get(key)
    if raw is None:
        raw = "" if value in (None, 0) else str(value)
    return CheckedField(key, label, check, raw, help=help_, **kwargs)


def outgoing_fields(screen) -> ComposeResult:
    """Server and port for EWS (as the guides) and SMTP; a note for Graph."""
    cfg = screen.cfg
    o, ends = cfg.outgoing, resolve(cfg)
    if o.protocol == "graph":
        yield Static(f"Microsoft Graph: {ends.graph_url}/v1.0 (from the {cfg.cloud.label} cloud; "
                     "[endpoints] graph_url overrides it). No server or port to enter.",
                     id="graph-note", classes="field-help", markup=False)
        return
    if o.protocol == "smtp":
        yield _field(screen, "outgoing.server", "SMTP server", f.check_server, o.server,
                     f"{ends.smtp_host} for Exchange Online in this cloud (SMTP AUTH, OAuth 2.0).",
                     placeholder=ends.smtp_host)
        yield _field(screen, "outgoing.port", "SMTP port", f.check_port, o.port,
                     f"{SMTP_PORT}: client submission with STARTTLS (TLS always verified).",
                     placeholder=str(SMTP_PORT))
        return
    yield screen.field("outgoing.server", "server", f.check_server, o.server)
    yield screen.field("outgoing.port", "port", f.check_port, o.port)


def incoming_fields(screen) -> ComposeResult:
    """IMAP server and port (empty: the cloud's IMAP host and 993)."""
    cfg = screen.cfg
    i, ends = cfg.incoming, resolve(cfg)
    if i.protocol != "imap":
        return
    yield Static("Incoming e-mail (IMAP)", classes="section")
    yield _field(screen, "incoming.server", "IMAP server", f.check_server, i.server or ends.imap_host,
                 f"{ends.imap_host} for Exchange Online in this cloud.", placeholder=ends.imap_host)
    yield _field(screen, "incoming.port", "IMAP port", f.check_port, i.port or IMAP_PORT,
                 f"{IMAP_PORT}: IMAP over TLS (implicit, verified).", placeholder=str(IMAP_PORT))


def protocol_line(cfg) -> str:
    from wizard.guide.recommend import CHOICE_LABELS, choice_of
    return "Protocol: " + CHOICE_LABELS[choice_of(cfg.outgoing.protocol, cfg.incoming.protocol)] + \
        " (chosen in stage 1)"
