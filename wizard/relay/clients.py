"""Adding a relay client (``[[relay.clients]]``): the one place that makes its password.

``relay add-client`` (the CLI) and the wizard's relay dialog both call ``add_client``: it
checks the name and addresses, creates the ``[relay]`` section if needed, generates the
password and stores only its scrypt hash in the config. The caller saves the config and
shows the returned password once.
"""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class ClientError(ValueError):
    """A bad name, address or a duplicate: the message names the field and what is expected."""

    def __init__(self, field: str, message: str, detail: str | None = None):
        super().__init__(message)
        self.field = field
        self.detail = detail or message   # for a form that names the field itself (no CLI's NAME)


def check_name(name: str) -> str | None:
    if not NAME_RE.fullmatch(name or ""):
        return "must be letters, digits and . _ - @ (the SMTP user name), up to 64 characters"
    return None


def add_client(cfg, name: str, senders: list[str], mailbox: str = "") -> str:
    """Append a client to ``cfg.relay`` (made with its defaults when absent) and return its
    generated password; only the hash goes into ``cfg``. Raises ``ClientError``."""
    from wizard.config import fields as f
    from wizard.config.relay import Relay, RelayClient
    from wizard.relay.auth import generate_password, hash_password
    name = (name or "").strip()
    problem = check_name(name)
    if problem:
        raise ClientError("name", f"NAME {problem}", problem)
    senders = [a.strip() for a in senders if a and a.strip()]
    if not senders:
        raise ClientError("senders", "give at least one sender address the client may use")
    for addr in senders + ([mailbox.strip()] if mailbox and mailbox.strip() else []):
        checked = f.check_email(addr, "Sender address")
        if checked.error:
            raise ClientError("senders", f"{addr!r}: {checked.error}")
    if cfg.relay is None:
        cfg.relay = Relay()
    if cfg.relay.client(name):
        raise ClientError("name", f"a client named {name!r} already exists; remove its [[relay.clients]] entry "
                                  "first to give it a new password")
    password = generate_password()
    cfg.relay.clients.append(RelayClient(name=name, password_hash=hash_password(password), senders=senders,
                                         mailbox=(mailbox or "").strip()))
    return password
