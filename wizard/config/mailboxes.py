"""Which mailboxes a config reads.

Efecte ESM reads its mail by IMAP from the O365 mailbox of the account it
signs in with (guide 004: "the O365 email account to be used with ESM"), so an
ESM config always has an incoming mailbox: the one named in
``[[incoming.accounts]]``, by default the service account's own. The wizard,
``init`` and ``sandbox --write-config`` write it; the connection test reads
an older ESM config without one as if it named the default (and says so).
"""

from __future__ import annotations

SYSTEMS_READING_OWN_MAILBOX = ("efecte_esm",)
DELEGATED_FLOWS = ("password", "device_code")


def reads_own_mailbox(cfg) -> bool:
    """True when the system reads mail from the mailbox it signs in with (Efecte ESM)."""
    return cfg.system in SYSTEMS_READING_OWN_MAILBOX


def service_mailbox(cfg) -> str:
    """The service account's own mailbox: the user who signs in (delegated
    flows), else the sender mailbox (app-only flows have no user)."""
    if cfg.auth.flow in DELEGATED_FLOWS and cfg.auth.username and "@" in cfg.auth.username:
        return cfg.auth.username
    return cfg.outgoing.sender or ""


def default_incoming(cfg) -> str:
    """The incoming mailbox to add for a config that needs one and names none, or ""."""
    if cfg.incoming.accounts or not reads_own_mailbox(cfg):
        return ""
    return service_mailbox(cfg)


def with_default_incoming(cfg):
    """``cfg`` itself, or a copy with the default incoming mailbox added."""
    address = default_incoming(cfg)
    if not address:
        return cfg
    import copy
    from wizard.config.schema import IncomingAccount
    filled = copy.deepcopy(cfg)
    filled.incoming.accounts = [IncomingAccount(address=address)]
    return filled


__all__ = ["reads_own_mailbox", "service_mailbox", "default_incoming", "with_default_incoming"]
