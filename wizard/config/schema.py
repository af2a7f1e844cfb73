"""The configuration model (schema version 1) and its validation.

This module is the public contract for the TOML file: field names and meanings
may be extended, never changed. It knows nothing of files (see config_io) or
of Textual.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from pathlib import Path

from wizard.config import fields as f
from wizard.config.alerts import Alerts, problems as alert_problems, to_data as alerts_data
from wizard.config import relay as relay_section
from wizard.config.clouds import CLOUDS

SCHEMA_VERSION = 1
SYSTEMS = {
    "monitor_g5": "Monitor ERP G5 (outgoing + incoming e-mail)",
    "efecte_esm": "Efecte ESM (IMAP + SMTP)",
    "generic": "Another system (generic)",
}
# The flows the guides describe (the wizard's first choice) ...
FLOWS = {
    "client_secret": "Client secret (app-only)",
    "password": "User name & password (delegated, ROPC)",
}
# ... and every flow the config accepts (the safer ones beyond the guides).
ALL_FLOWS = FLOWS | {
    "certificate": "Certificate (app-only, client assertion)",
    "device_code": "Device code (delegated, works with MFA)",
}
APP_ONLY_FLOWS = ("client_secret", "certificate")
# Which [auth] keys belong to which flow: only one method is active at a time
# (guide limitation), so keys of another flow are not written and are refused
# in a hand-edited file.
FLOW_KEYS = {
    "client_secret": ("client_secret", "secret_expires"),
    "password": ("username", "password"),
    "certificate": ("certificate", "thumbprint", "certificate_expires"),
    "device_code": ("username",),
}
EXCHANGE_KINDS = ("online", "on_premises")
PROTOCOLS = ("ews", "graph", "smtp", "imap")


@dataclass
class Microsoft:
    cloud: str = "global"
    tenant_id: str = ""
    client_id: str = ""
    exchange: str = "online"        # "online" (Exchange Online) or "on_premises" (keeps EWS after 2027-04-01)


@dataclass
class Auth:
    flow: str = "client_secret"
    client_secret: str = ""
    secret_expires: date | None = None
    username: str = ""
    password: str = ""
    certificate: str = ""           # certificate flow: PEM file with the private key (and the certificate)
    thumbprint: str = ""            # certificate flow: SHA-1 thumbprint shown in the portal (hex)
    certificate_expires: date | None = None

    @property
    def app_only(self) -> bool:
        return self.flow in APP_ONLY_FLOWS


@dataclass
class UserOverride:
    """A per-user e-mail setting (Monitor G5 22.6, guide 003): e.g. the WEBSHOP
    user sending with its own Exchange user name and password."""
    name: str = ""
    flow: str = "password"
    username: str = ""
    password: str = ""
    sender: str = ""


@dataclass
class Outgoing:
    protocol: str = "ews"
    server: str = "outlook.office365.com"
    port: int = 443
    sender: str = ""
    test_recipient: str = ""

    @property
    def ews_url(self) -> str:
        return f"https://{self.server}:{self.port}/EWS/Exchange.asmx"


@dataclass
class IncomingAccount:
    address: str = ""
    username: str = ""
    password: str = ""
    types: list[str] = field(default_factory=list)
    available_to: str = "all"


@dataclass
class Incoming:
    protocol: str = "ews"
    server: str = ""                # empty: the outgoing server (EWS/Graph) or the cloud's IMAP host
    port: int = 0                   # 0: the protocol's default (443 EWS, 993 IMAP)
    poll_minutes: int = 60
    accounts: list[IncomingAccount] = field(default_factory=list)


@dataclass
class Endpoints:
    authority: str = ""
    graph_url: str = ""
    ca_bundle: str = ""


@dataclass
class Config:
    version: int = SCHEMA_VERSION
    system: str = "monitor_g5"
    microsoft: Microsoft = field(default_factory=Microsoft)
    auth: Auth = field(default_factory=Auth)
    outgoing: Outgoing = field(default_factory=Outgoing)
    incoming: Incoming = field(default_factory=Incoming)
    endpoints: Endpoints = field(default_factory=Endpoints)
    users: list[UserOverride] = field(default_factory=list)
    alerts: Alerts = field(default_factory=Alerts)      # optional [alerts] (wizard/config/alerts.py)
    has_alerts: bool = field(default=False, repr=False, compare=False)   # the file has an [alerts] table
    relay: relay_section.Relay | None = None        # the optional [relay] section (`mailwizard relay`)

    # -- derived values -------------------------------------------------
    @property
    def cloud(self):
        return CLOUDS.get(self.microsoft.cloud, CLOUDS["global"])

    @property
    def authority_host(self) -> str:
        return (self.endpoints.authority or self.cloud.authority).rstrip("/")

    @property
    def authority_url(self) -> str:
        return f"{self.authority_host}/{self.microsoft.tenant_id}"

    @property
    def ca_bundle(self) -> str | None:
        """The CA bundle to trust: config first, then the usual environment variables."""
        return self.endpoints.ca_bundle or environment_ca_bundle()


CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")     # in the order they are read


def environment_ca_bundle() -> str | None:
    """The CA bundle the environment names (REQUESTS_CA_BUNDLE, else SSL_CERT_FILE), or None."""
    return next((os.environ[name] for name in CA_BUNDLE_VARIABLES if os.environ.get(name)), None)


class ConfigError(Exception):
    """A problem with a config value or file, naming where it is.

    ``field`` is the dotted key ('auth.client_secret'); ``line`` the 1-based
    line in ``path`` when known.
    """

    def __init__(self, message: str, *, field: str | None = None, path: str | Path | None = None,
                 line: int | None = None, problems: list["Problem"] | None = None):
        self.message = message
        self.field = field
        self.path = str(path) if path else None
        self.line = line
        self.problems = problems or []
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "")
        head = f"{where}: " if where else ""
        if self.field:
            head += f"[{self.field}] "
        text = head + self.message
        for p in self.problems[1:]:
            text += "\n" + p.render(self.path)
        return text


@dataclass
class Problem:
    field: str
    message: str
    line: int | None = None
    warning: bool = False

    def render(self, path: str | None = None) -> str:
        where = f"{path}:{self.line}: " if path and self.line else (f"{path}: " if path else "")
        return f"{where}[{self.field}] {self.message}"


# -- building a Config from parsed TOML ----------------------------------

_SECTIONS = {"microsoft": Microsoft, "auth": Auth, "outgoing": Outgoing, "incoming": Incoming,
             "endpoints": Endpoints, "alerts": Alerts}
_TYPES = {
    "version": int, "system": str,
    "microsoft.cloud": str, "microsoft.tenant_id": str, "microsoft.client_id": str,
    "auth.flow": str, "auth.client_secret": str, "auth.secret_expires": date,
    "auth.username": str, "auth.password": str, "auth.certificate": str, "auth.thumbprint": str,
    "auth.certificate_expires": date, "microsoft.exchange": str,
    "incoming.server": str, "incoming.port": int,
    "users.name": str, "users.flow": str, "users.username": str, "users.password": str, "users.sender": str,
    "outgoing.protocol": str, "outgoing.server": str, "outgoing.port": int,
    "outgoing.sender": str, "outgoing.test_recipient": str,
    "incoming.protocol": str, "incoming.poll_minutes": int, "incoming.accounts": list,
    "incoming.accounts.address": str, "incoming.accounts.username": str,
    "incoming.accounts.password": str, "incoming.accounts.types": list,
    "incoming.accounts.available_to": str,
    "endpoints.authority": str, "endpoints.graph_url": str, "endpoints.ca_bundle": str,
    "alerts.to": list, "alerts.days_before": list,
}
_TYPE_NAMES = {int: "a whole number", str: "a text in quotes", date: "a date (YYYY-MM-DD, no quotes)",
               list: "a list", dict: "a table"}


def _plain(value):
    """tomlkit items -> plain Python values."""
    if hasattr(value, "unwrap"):
        return value.unwrap()
    return value


def from_dict(data: dict, locate=lambda key: None) -> tuple[Config, list[Problem]]:
    """Build a Config from plain TOML data. Returns the config and the problems
    found in types and key names (value checks are in ``validate``)."""
    data = _plain(data)
    problems: list[Problem] = []
    cfg = Config()

    def typed(key: str, value, where: str):
        want = _TYPES[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is date and isinstance(value, datetime):     # Graph's endDateTime pasted: its day counts
            return value.date()
        if want is date and isinstance(value, str):
            try:
                return _day(value.strip())
            except ValueError:
                ok = False
        if want is date and value == "":
            return None
        if not ok:
            shown = "" if _is_secret_key(where) else f" {value!r}"
            problems.append(Problem(where, f"must be {_TYPE_NAMES[want]}, not {type(value).__name__}{shown}", locate(where)))
            return None
        return value

    for key, value in data.items():
        if key in ("version", "system"):
            v = typed(key, value, key)
            if v is not None:
                setattr(cfg, key, v)
        elif key == "users":
            cfg.users = _users(value, problems, locate)
        elif key == "relay":
            cfg.relay = relay_section.parse(value, lambda *p: problems.append(Problem(*p)), locate)
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                problems.append(Problem(key, f"must be a table [{key}]", locate(key)))
                continue
            section = getattr(cfg, key)
            cfg.has_alerts = cfg.has_alerts or key == "alerts"
            allowed = {fl.name for fl in fields(section)}
            for k, v in value.items():
                where = f"{key}.{k}"
                if k not in allowed:
                    problems.append(Problem(where, f"unknown key '{k}' in [{key}]; known keys: {', '.join(sorted(allowed))}", locate(where)))
                    continue
                if where == "incoming.accounts":
                    section.accounts = _accounts(v, problems, locate)
                    continue
                tv = typed(where, v, where)
                if tv is not None or _TYPES[where] is date:
                    setattr(section, k, tv)
        else:
            problems.append(Problem(key, f"unknown key '{key}'; known: version, system, {', '.join(_SECTIONS)}, users, relay", locate(key)))
    return cfg, problems


def _day(text: str) -> date:
    """A date, or a date and time (its day), as ISO 8601 text."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def _is_secret_key(key: str) -> bool:
    """Keys whose values must never be echoed in a message."""
    return key.rsplit(".", 1)[-1] in ("client_secret", "password")


def _accounts(value, problems, locate) -> list[IncomingAccount]:
    return _table_list(value, IncomingAccount, "incoming.accounts", problems, locate)


def _users(value, problems, locate) -> list[UserOverride]:
    return _table_list(value, UserOverride, "users", problems, locate)


def _table_list(value, cls, key: str, problems, locate) -> list:
    """An array of tables ([[key]]) of dataclass cls, type-checked per key."""
    if not isinstance(value, list):
        problems.append(Problem(key, f"must be a list of [[{key}]] tables", locate(key)))
        return []
    out = []
    allowed = {fl.name for fl in fields(cls)}
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, f"must be a [[{key}]] table", locate(where)))
            continue
        obj = cls()
        for k, v in item.items():
            if k not in allowed:
                problems.append(Problem(f"{where}.{k}", f"unknown key '{k}'; known keys: {', '.join(sorted(allowed))}", locate(f"{where}.{k}")))
                continue
            want = _TYPES[f"{key}.{k}"]
            if not isinstance(v, want):
                problems.append(Problem(f"{where}.{k}", f"must be {_TYPE_NAMES[want]}", locate(f"{where}.{k}")))
                continue
            if k == "types" and not all(isinstance(t, str) for t in v):
                problems.append(Problem(f"{where}.types", "must be a list of texts, e.g. [\"Monitor-to-Monitor\"]", locate(f"{where}.{k}")))
                continue
            setattr(obj, k, v)
        out.append(obj)
    return out


def to_dict(cfg: Config) -> dict:
    """Config -> plain data in file order, leaving out empty optional values."""
    def section(obj) -> dict:
        out = {}
        for fl in fields(obj):
            v = getattr(obj, fl.name)
            if fl.name == "accounts":
                out["accounts"] = [
                    {k: val for k, val in vars(a).items() if val not in ("", [], None)} for a in v
                ]
                continue
            if v in ("", None) or (fl.name in ("server", "port") and not v and obj.__class__ is Incoming):
                continue
            out[fl.name] = v
        return out

    data: dict = {"version": cfg.version, "system": cfg.system}
    for name in _SECTIONS:
        data[name] = alerts_data(cfg.alerts) if name == "alerts" else section(getattr(cfg, name))
    if data["microsoft"].get("exchange") == "online":
        del data["microsoft"]["exchange"]   # the default; keeps files as the schema example shows
    own = FLOW_KEYS.get(cfg.auth.flow, ())
    for key in {k for keys in FLOW_KEYS.values() for k in keys} - set(own):
        data["auth"].pop(key, None)
    if not data["endpoints"]:
        del data["endpoints"]
    if not data["alerts"]:
        del data["alerts"]
    if cfg.users:
        data["users"] = [{k: v for k, v in vars(u).items() if v not in ("", None)} for u in cfg.users]
    if not data["incoming"].get("accounts"):
        data["incoming"].pop("accounts", None)
    if cfg.relay is not None:
        data["relay"] = relay_section.to_data(cfg.relay)
    return data


# -- value checks ------------------------------------------------------------

def resolve_secret(value: str, field_name: str) -> str:
    """Resolve 'env:NAME' and 'file:PATH' references; literal values pass through."""
    if value.startswith("env:"):
        name = value[4:]
        if not name:
            raise ConfigError("has no variable name after 'env:': write it as \"env:NAME\" (e.g. env:ERP_SECRET).", field=field_name)
        if name not in os.environ:
            raise ConfigError(f"refers to environment variable {name}, which is not set. Set it, or put the value in the file.", field=field_name)
        if not os.environ[name].strip():
            raise ConfigError(f"refers to environment variable {name}, which is empty. Put the value in it, or in the file.", field=field_name)
        return os.environ[name]
    if value.startswith("file:"):
        if not value[5:].strip():
            raise ConfigError("has no path after 'file:': write it as \"file:/path/to/file\".", field=field_name)
        p = Path(value[5:]).expanduser()
        try:
            text = p.read_text(encoding="utf-8-sig").strip()    # -sig: a BOM (Windows Notepad) is not part of the value
        except OSError as exc:
            raise ConfigError(f"refers to file {p}, which cannot be read ({exc.strerror or exc}).", field=field_name) from None
        except UnicodeDecodeError:
            raise ConfigError(f"refers to file {p}, which is not UTF-8 text: save it as UTF-8 with only the value in it.", field=field_name) from None
        if not text:
            raise ConfigError(f"refers to file {p}, which is empty. Put the value in it, or in the config file.", field=field_name)
        return text
    return value


def validate(cfg: Config, *, today: date | None = None, resolve: bool = True,
             locate=lambda key: None) -> list[Problem]:
    """All problems with the values (errors, and warnings with warning=True)."""
    out: list[Problem] = []

    def add(fld: str, checked: f.Checked):
        if checked.error:
            out.append(Problem(fld, checked.error, locate(fld)))
        elif checked.warning:
            out.append(Problem(fld, checked.warning, locate(fld), warning=True))

    if cfg.version != SCHEMA_VERSION:
        out.append(Problem("version", f"schema version {cfg.version} is not supported; this mailwizard reads version {SCHEMA_VERSION}", locate("version")))
    if cfg.system not in SYSTEMS:
        out.append(Problem("system", f"unknown system '{cfg.system}'; expected one of: {', '.join(SYSTEMS)}", locate("system")))
    if cfg.microsoft.cloud not in CLOUDS:
        out.append(Problem("microsoft.cloud", f"unknown cloud '{cfg.microsoft.cloud}'; expected one of: {', '.join(CLOUDS)}", locate("microsoft.cloud")))
    if cfg.microsoft.exchange not in EXCHANGE_KINDS:
        out.append(Problem("microsoft.exchange", f"unknown value '{cfg.microsoft.exchange}'; expected one of: {', '.join(EXCHANGE_KINDS)}", locate("microsoft.exchange")))
    add("microsoft.tenant_id", f.check_tenant_id(cfg.microsoft.tenant_id))
    add("microsoft.client_id", f.check_client_id(cfg.microsoft.client_id))

    a = cfg.auth
    if a.flow not in ALL_FLOWS:
        out.append(Problem("auth.flow", f"unknown flow '{a.flow}'; expected one of: {', '.join(ALL_FLOWS)}", locate("auth.flow")))
    elif a.flow == "client_secret":
        _check_secret_ref(out, "auth.client_secret", a.client_secret, f.check_client_secret, resolve, locate)
        if a.secret_expires is not None:
            add("auth.secret_expires", f.check_secret_expiry(a.secret_expires, today))
    elif a.flow == "password":
        add("auth.username", f.check_username(a.username))
        _check_secret_ref(out, "auth.password", a.password, f.check_password, resolve, locate)
    elif a.flow == "certificate":
        if not a.certificate:
            out.append(Problem("auth.certificate", "is empty: give the path of the PEM file with the private key (mailwizard can create one)", locate("auth.certificate")))
        elif not Path(a.certificate).expanduser().is_file():
            out.append(Problem("auth.certificate", f"file {a.certificate} does not exist", locate("auth.certificate")))
        if not re.fullmatch(r"[0-9A-Fa-f]{40}", a.thumbprint.replace(":", "")):
            out.append(Problem("auth.thumbprint", "must be the certificate's SHA-1 thumbprint: 40 hexadecimal characters, as shown in Certificates & secrets", locate("auth.thumbprint")))
        if a.certificate.lower().endswith((".cer", ".crt", ".der")):
            out.append(Problem("auth.certificate", "points at the public certificate (the file you upload to the portal); give the PEM file with the private key instead", locate("auth.certificate")))
        if a.certificate_expires is not None:
            add("auth.certificate_expires", f.check_secret_expiry(a.certificate_expires, today, label="Certificate", max_months=None))
    if a.flow in FLOW_KEYS:
        own = set(FLOW_KEYS[a.flow])
        for other, keys in FLOW_KEYS.items():
            for key in keys:
                if key not in own and getattr(a, key) not in ("", None):
                    out.append(Problem(f"auth.{key}", f"belongs to the {other} flow, but flow is {a.flow}: only one authentication method can be active at a time. Remove it or change flow.", locate(f"auth.{key}")))

    o = cfg.outgoing
    if o.protocol not in PROTOCOLS:
        out.append(Problem("outgoing.protocol", f"unknown protocol '{o.protocol}'; expected one of: {', '.join(PROTOCOLS)}", locate("outgoing.protocol")))
    add("outgoing.server", _server_in_file(o.server))
    add("outgoing.port", f.check_port(o.port))
    add("outgoing.sender", f.check_email(o.sender, "Sender mailbox"))
    if o.test_recipient:
        add("outgoing.test_recipient", f.check_email(o.test_recipient, "Test recipient"))

    i = cfg.incoming
    if i.protocol not in PROTOCOLS:
        out.append(Problem("incoming.protocol", f"unknown protocol '{i.protocol}'; expected one of: {', '.join(PROTOCOLS)}", locate("incoming.protocol")))
    add("incoming.poll_minutes", f.check_poll_minutes(i.poll_minutes))
    for n, acc in enumerate(i.accounts):
        add(f"incoming.accounts[{n}].address", f.check_email(acc.address, "Account e-mail address"))
        if a.flow == "password" and acc.username:
            add(f"incoming.accounts[{n}].username", f.check_username(acc.username))

    if i.server:
        add("incoming.server", _server_in_file(i.server))
    if i.port:
        add("incoming.port", f.check_port(i.port))
    for n, u in enumerate(cfg.users):
        if u.flow not in ALL_FLOWS:
            out.append(Problem(f"users[{n}].flow", f"unknown flow '{u.flow}'; expected one of: {', '.join(ALL_FLOWS)}", locate(f"users[{n}].flow")))
        if not u.name:
            out.append(Problem(f"users[{n}].name", "is empty: the user's name in the business system (e.g. WEBSHOP)", locate(f"users[{n}].name")))
        if u.flow == "password":
            add(f"users[{n}].username", f.check_username(u.username))
        if u.sender:
            add(f"users[{n}].sender", f.check_email(u.sender, "User's sender address"))

    e = cfg.endpoints
    if e.authority and not e.authority.startswith("https://"):
        out.append(Problem("endpoints.authority", "must be an https:// URL (the identity platform only talks HTTPS)", locate("endpoints.authority")))
    if e.graph_url and not e.graph_url.startswith("https://"):
        out.append(Problem("endpoints.graph_url", "must be an https:// URL", locate("endpoints.graph_url")))
    if e.ca_bundle and not Path(e.ca_bundle).expanduser().is_file():
        out.append(Problem("endpoints.ca_bundle", f"file {e.ca_bundle} does not exist: give the path of a PEM file with the CA certificates to trust", locate("endpoints.ca_bundle")))
    for fld, message, warning in alert_problems(cfg.alerts, cfg.has_alerts):
        out.append(Problem(fld, message, locate(fld.split("[")[0]), warning=warning))
    if cfg.relay is not None:
        relay_section.validate(cfg.relay, lambda *p: out.append(Problem(*p)), locate)
    hidden = _invisible_characters(cfg, locate)
    flagged = {p.field for p in hidden}
    return hidden + [p for p in out if p.field not in flagged]


def _invisible_characters(cfg: Config, locate) -> list[Problem]:
    """A zero-width space, BOM or direction mark pasted along with an ID, secret
    or address: invisible in the file, so say which character it is (never the value)."""
    import unicodedata
    values = {"microsoft.tenant_id": cfg.microsoft.tenant_id, "microsoft.client_id": cfg.microsoft.client_id,
              "auth.client_secret": cfg.auth.client_secret, "auth.username": cfg.auth.username,
              "auth.thumbprint": cfg.auth.thumbprint, "outgoing.server": cfg.outgoing.server,
              "outgoing.sender": cfg.outgoing.sender, "outgoing.test_recipient": cfg.outgoing.test_recipient}
    values.update({f"incoming.accounts[{n}].address": a.address for n, a in enumerate(cfg.incoming.accounts)})
    out = []
    for fld, value in values.items():
        hidden = next((c for c in value or "" if unicodedata.category(c) == "Cf"), None)
        if hidden is not None:
            out.append(Problem(fld, f"contains an invisible character (U+{ord(hidden):04X} "
                                    f"{unicodedata.name(hidden, 'format character')}), probably pasted along "
                                    "with the value: delete it or type the value again.", locate(fld)))
    return out


def _server_in_file(raw: str) -> f.Checked:
    """check_server, but a URL or path is an error here: the wizard cleans what
    is typed, while a file's value is used as it stands (as the host name)."""
    checked = f.check_server(raw)
    if not checked.error and ("/" in raw or ":" in raw):
        return f.Checked(checked.value, f"'{raw}' is a URL: give the host name only, e.g. {checked.value} "
                                        "(the port goes in port).")
    return checked


def _check_secret_ref(out, fld, value, checker, resolve, locate):
    if value.startswith(("env:", "file:")):
        if not resolve:
            return
        try:
            value = resolve_secret(value, fld)
        except ConfigError as exc:
            out.append(Problem(fld, exc.message, locate(fld)))
            return
    checked = checker(value)
    if checked.error:
        out.append(Problem(fld, checked.error, locate(fld)))
    elif checked.warning:
        out.append(Problem(fld, checked.warning, locate(fld), warning=True))


def secrets_of(cfg: Config) -> list[str]:
    """Every secret value the config holds or points at (resolved where possible),
    so output can be scrubbed of them."""
    values = []
    for raw in ([cfg.auth.client_secret, cfg.auth.password] + [a.password for a in cfg.incoming.accounts]
                + [u.password for u in cfg.users]):
        if not raw:
            continue
        values.append(raw)
        if raw.startswith(("env:", "file:")):
            try:
                values.append(resolve_secret(raw, "secret"))
            except ConfigError:
                pass
    return [v for v in values if v and len(v) >= 4]


def masked(cfg: Config) -> Config:
    """A copy of cfg with every secret masked (client secret: its first 3
    characters, as the portal's hint, 'abc********'; passwords: a fixed mask): for
    showing (the wizard's preview, `report`), never for writing."""
    import copy
    from wizard.config.fields import mask_password, mask_secret
    shown = copy.deepcopy(cfg)
    shown.auth.client_secret = mask_secret(shown.auth.client_secret)
    shown.auth.password = mask_password(shown.auth.password)
    for item in list(shown.incoming.accounts) + list(shown.users):
        item.password = mask_password(item.password)
    for client in (shown.relay.clients if shown.relay is not None else ()):   # not a secret: kept out of view
        client.password_hash = "scrypt$(hash of the relay password, not shown)" if client.password_hash else ""
    return shown


def copy_config(cfg: Config) -> Config:
    import copy
    return copy.deepcopy(cfg)


assert all(is_dataclass(c) for c in _SECTIONS.values())
