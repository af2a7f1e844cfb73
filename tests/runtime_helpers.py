"""Shared set-up for the runtime tests: a sandbox tenant where the sample
app may do everything the runtime needs on every protocol."""

from __future__ import annotations

from wizard.config.schema import IncomingAccount
from wizard.sandbox import sample

PROTOCOLS = ("ews", "graph", "smtp+imap")


def grant_all(sb) -> None:
    """Mail.ReadWrite for Graph, SMTP/IMAP app-only (service principal +
    FullAccess), delegated ReadWrite(.Shared) for the password app."""
    t = sb.tenant
    app = t.app(sample.SECRET_APP_ID)
    app.roles.setdefault("graph", set()).update({"Mail.Send", "Mail.Read", "Mail.ReadWrite"})
    app.roles.setdefault("exchange", set()).update({"SMTP.SendAsApp", "IMAP.AccessAsApp"})
    app.exchange_service_principal = True
    pw = t.app(sample.PASSWORD_APP_ID)
    pw.scopes.setdefault("graph", set()).update({"Mail.ReadWrite", "Mail.ReadWrite.Shared", "Mail.Send.Shared"})
    for mb in t.mailboxes:
        mb.full_access.add(sample.SECRET_APP_ID)
        mb.full_access.add(sample.SERVICE_USER)


def config(sb, protocol="ews", flow="client_secret", **overrides):
    grant_all(sb)
    return sb.config(flow=flow, protocol=protocol, **overrides)


def with_bad_account(cfg):
    """The config's accounts plus one address that has no mailbox."""
    cfg.incoming.accounts.insert(1, IncomingAccount(address=sample.NO_MAILBOX, username=cfg.incoming.accounts[0].username,
                                                    password=cfg.incoming.accounts[0].password))
    return cfg


def token_requests(sb, grant: str | None = None) -> list:
    out = [r for r in sb.requests if r.path.endswith("/oauth2/v2.0/token")]
    if grant:
        out = [r for r in out if f"grant_type={grant}".encode() in r.body]
    return out


class FakeClock:
    """Wall-clock seconds that only move when told (or when 'slept')."""

    def __init__(self, start: float | None = None):
        import time
        self.now = time.time() if start is None else start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
