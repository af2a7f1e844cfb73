"""The optional ``[relay]`` section of schema v1 (``mailwizard relay``) and its checks.

    [relay]
    listen = "127.0.0.1:2525"        # host:port the business system connects to
    imap_listen = "127.0.0.1:1143"   # IMAP pass-through (when [incoming] protocol = "imap"); "" = off
    pop3_listen = ""                 # e.g. "127.0.0.1:1110": POP3, the INBOX over the same IMAP; "" = off
    spool = ""                       # empty: <user state dir>/relay-spool (mode 0700)
    certificate = ""                 # PEM certificate (chain); with it STARTTLS (or implicit TLS) is offered
    key = ""                         # PEM private key; empty: in the certificate file
    tls = "starttls"                 # "starttls" or "implicit" (only with a certificate)
    max_size_mb = 35                 # 1..150: announced in EHLO SIZE
    max_age = "2d"                   # retry transient failures this long ("36h", "90m", "2d")

    [[relay.clients]]
    name = "erp"
    password_hash = "scrypt$16384$8$1$<salt hex>$<hash hex>"   # `mailwizard relay add-client` writes it
    senders = ["erp@contoso.com"]
    mailbox = "erp@contoso.com"

No import of ``wizard.config.schema`` (it imports this module): problems go
back through the ``problem(field, message)`` callback.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from wizard.config import fields as f

DEFAULT_LISTEN = "127.0.0.1:2525"
DEFAULT_IMAP_LISTEN = "127.0.0.1:1143"
DEFAULT_POP3_LISTEN = "127.0.0.1:1110"      # what the wizard sets when the system reads over POP3
DEFAULT_MAX_MB = 35          # Exchange Online's default message size limit
MAX_MB = 150                 # Exchange Online's largest (MaxSendSize)
DEFAULT_MAX_AGE = "2d"
TLS_MODES = ("starttls", "implicit")
HASH_RE = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[0-9a-f]{16,}\$[0-9a-f]{32,}$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class RelayClient:
    name: str = ""
    password_hash: str = ""
    senders: list[str] = field(default_factory=list)
    mailbox: str = ""

    @property
    def own_mailbox(self) -> str:
        return self.mailbox or (self.senders[0] if self.senders else "")


@dataclass
class Relay:
    listen: str = DEFAULT_LISTEN
    imap_listen: str = DEFAULT_IMAP_LISTEN   # IMAP pass-through, when [incoming] protocol = "imap"
    pop3_listen: str = ""                    # POP3 (e.g. "127.0.0.1:1110"), when [incoming] protocol = "imap"
    spool: str = ""
    certificate: str = ""
    key: str = ""
    tls: str = "starttls"
    max_size_mb: int = DEFAULT_MAX_MB
    max_age: str = DEFAULT_MAX_AGE
    clients: list[RelayClient] = field(default_factory=list)

    @property
    def max_size(self) -> int:
        return int(self.max_size_mb) * 1024 * 1024

    @property
    def max_age_seconds(self) -> float:
        return parse_duration(self.max_age) or 2 * 86400.0

    def host_port(self) -> tuple[str, int]:
        return split_listen(self.listen)

    def spool_path(self) -> Path:
        if self.spool:
            return Path(self.spool).expanduser()
        from platformdirs import user_state_path
        return user_state_path("mailwizard", appauthor=False) / "relay-spool"

    def client(self, name: str) -> RelayClient | None:
        return next((c for c in self.clients if c.name.lower() == name.lower()), None)


_TYPES = {"listen": str, "imap_listen": str, "spool": str, "certificate": str, "key": str, "tls": str, "max_size_mb": int,
          "max_age": str, "clients": list, "pop3_listen": str}
_CLIENT_TYPES = {"name": str, "password_hash": str, "senders": list, "mailbox": str}
_NAMES = {str: "a text in quotes", int: "a whole number", list: "a list"}


def parse_duration(text: str) -> float | None:
    """'2d' / '36h' / '90m' / '45s' / '1d12h' -> seconds; None when not of that form."""
    text = str(text).strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def split_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:2525' / '[::1]:2525' / ':2525' -> (host, port). Raises ValueError."""
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("must be host:port, e.g. \"127.0.0.1:2525\"")
    host = host.strip("[]") or "0.0.0.0"
    if not 0 <= int(port) <= 65535:       # 0: any free port (the relay says which at start)
        raise ValueError(f"port {port} is not between 1 and 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse(value, problem, locate) -> Relay:
    """A Relay from the TOML table; wrong types and unknown keys are told through ``problem``."""
    relay = Relay()
    if not isinstance(value, dict):
        problem("relay", "must be a table [relay]", locate("relay"))
        return relay
    for k, v in value.items():
        where = f"relay.{k}"
        if k not in _TYPES:
            problem(where, f"unknown key '{k}' in [relay]; known keys: {', '.join(sorted(_TYPES))}", locate(where))
            continue
        if not isinstance(v, _TYPES[k]) or isinstance(v, bool):
            problem(where, f"must be {_NAMES[_TYPES[k]]}", locate(where))
            continue
        if k == "clients":
            relay.clients = _clients(v, problem, locate)
        else:
            setattr(relay, k, v)
    return relay


def _clients(items, problem, locate) -> list[RelayClient]:
    out = []
    for i, item in enumerate(items):
        where = f"relay.clients[{i}]"
        if not isinstance(item, dict):
            problem(where, "must be a [[relay.clients]] table", locate(where))
            continue
        c = RelayClient()
        for k, v in item.items():
            if k not in _CLIENT_TYPES:
                problem(f"{where}.{k}", f"unknown key '{k}'; known keys: {', '.join(sorted(_CLIENT_TYPES))}",
                        locate(f"{where}.{k}"))
                continue
            if not isinstance(v, _CLIENT_TYPES[k]) or (k == "senders" and not all(isinstance(s, str) for s in v)):
                want = "a list of addresses, e.g. [\"erp@contoso.com\"]" if k == "senders" else \
                    _NAMES[_CLIENT_TYPES[k]]
                problem(f"{where}.{k}", f"must be {want}", locate(f"{where}.{k}"))
                continue
            setattr(c, k, v)
        out.append(c)
    return out


def to_data(relay: Relay) -> dict:
    out: dict = {}
    defaults = Relay()
    for fl in fields(relay):
        v = getattr(relay, fl.name)
        if fl.name == "clients":
            continue
        if v != getattr(defaults, fl.name) or fl.name == "listen":
            out[fl.name] = v
    if relay.clients:
        out["clients"] = [{k: v for k, v in vars(c).items() if v not in ("", [], None)} for c in relay.clients]
    return out


def validate(relay: Relay, problem, locate) -> None:
    """Value checks: each problem names the field and what is expected."""
    host = ""
    try:
        host, _ = split_listen(relay.listen)
    except ValueError as exc:
        problem("relay.listen", str(exc), locate("relay.listen"))
    for key, proto in (("imap_listen", "IMAP"), ("pop3_listen", "POP3")):
        if not getattr(relay, key):
            continue
        where = f"relay.{key}"
        try:
            other_host, _ = split_listen(getattr(relay, key))
            if not is_loopback(other_host) and not relay.certificate:
                problem(where, f"{getattr(relay, key)} is reachable from other machines: {proto} beyond "
                        "loopback only with TLS; set relay.certificate, or listen on 127.0.0.1", locate(where))
        except ValueError as exc:
            problem(where, f"{exc} (or \"\" for no {proto})", locate(where))
    if relay.tls not in TLS_MODES:
        problem("relay.tls", f"unknown value '{relay.tls}'; expected one of: {', '.join(TLS_MODES)}",
                locate("relay.tls"))
    if not 1 <= relay.max_size_mb <= MAX_MB:
        problem("relay.max_size_mb", f"must be between 1 and {MAX_MB} (megabytes; Exchange Online takes at most "
                f"{MAX_MB} MB, {DEFAULT_MAX_MB} MB by default)", locate("relay.max_size_mb"))
    age = parse_duration(relay.max_age)
    if age is None or age <= 0:
        problem("relay.max_age", f"'{relay.max_age}' is not a duration: write e.g. \"2d\", \"36h\" or \"90m\"",
                locate("relay.max_age"))
    for key in ("certificate", "key"):
        path = getattr(relay, key)
        if path and not Path(path).expanduser().is_file():
            problem(f"relay.{key}", f"file {path} does not exist: give the path of a PEM file", locate(f"relay.{key}"))
    if relay.key and not relay.certificate:
        problem("relay.certificate", "is empty but relay.key is set: give the certificate too",
                locate("relay.certificate"))
    if host and not is_loopback(host):
        if not relay.certificate:
            problem("relay.listen", f"{relay.listen} is reachable from other machines: the relay listens beyond "
                    "loopback only with TLS; set relay.certificate (and relay.key), or listen on 127.0.0.1",
                    locate("relay.listen"))
        if not relay.clients:
            problem("relay.listen", f"{relay.listen} is reachable from other machines: add a client with "
                    "`mailwizard relay add-client NAME --from ADDR` first", locate("relay.listen"))
    seen = set()
    for i, c in enumerate(relay.clients):
        where = f"relay.clients[{i}]"
        if not c.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", c.name):
            problem(f"{where}.name", "must be a name of letters, digits and . _ - @ (the SMTP user name)",
                    locate(f"{where}.name"))
        elif c.name.lower() in seen:
            problem(f"{where}.name", f"client '{c.name}' is defined twice", locate(f"{where}.name"))
        seen.add(c.name.lower())
        if not HASH_RE.match(c.password_hash):
            problem(f"{where}.password_hash", "must be a scrypt hash as `mailwizard relay add-client` writes it "
                    "(scrypt$N$r$p$salt$hash); the password itself is never stored", locate(f"{where}.password_hash"))
        if not c.senders:
            problem(f"{where}.senders", "is empty: list the addresses this client may send from",
                    locate(f"{where}.senders"))
        for n, s in enumerate(c.senders):
            checked = f.check_email(s, "Sender address")
            if checked.error:
                problem(f"{where}.senders[{n}]", checked.error, locate(f"{where}.senders"))
        if c.mailbox and f.check_email(c.mailbox).error:
            problem(f"{where}.mailbox", f.check_email(c.mailbox, "Mailbox").error, locate(f"{where}.mailbox"))
