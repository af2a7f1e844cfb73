"""`mailwizard show`: the config with secrets masked, IDs grouped by four."""

from __future__ import annotations

from datetime import date

from wizard.cli.common import EXIT_OK, EXIT_USAGE
from wizard.cli.output import group4, paint, use_colour


def run(args) -> int:
    from wizard.cli.common import load_config

    path, cfg = load_config(args, "show", strict=False)
    if cfg is None:
        return EXIT_USAGE
    print(render(cfg, str(path), use_colour()))
    return EXIT_OK


def render(cfg, path: str, colour: bool = False, today: date | None = None) -> str:
    from wizard.config.schema import ALL_FLOWS as FLOWS, SYSTEMS
    from wizard.config.fields import mask_password, mask_secret

    today = today or date.today()
    m, a, o, i = cfg.microsoft, cfg.auth, cfg.outgoing, cfg.incoming
    rows = [
        ("config file", path),
        ("system", SYSTEMS.get(cfg.system, cfg.system)),
        ("cloud", m.cloud),
        ("tenant ID", _id(m.tenant_id)),
        ("client ID", _id(m.client_id)),
        ("flow", FLOWS.get(a.flow, a.flow)),
    ]
    if a.flow == "client_secret":
        rows.append(("client secret", mask_secret(a.client_secret) or "(not set)"))
        rows.append(("secret expires", _expiry(a.secret_expires, today, colour)))
    else:
        rows.append(("user name", a.username))
        rows.append(("password", mask_password(a.password) or "(not set)"))
    rows += [
        ("outgoing", f"{o.protocol} {_server(cfg, 'out')}"),
        ("sender", o.sender),
        ("test recipient", o.test_recipient or "(none)"),
        ("incoming", f"{i.protocol} {_server(cfg, 'in')}, every {i.poll_minutes} min, {len(i.accounts)} account(s)"),
    ]
    for acc in i.accounts:
        extra = f" user {acc.username}" if acc.username else ""
        rows.append(("  account", f"{acc.address}{extra} types={','.join(acc.types) or '-'} available to {acc.available_to}"))
    if cfg.users:
        rows.append(("users", f"{len(cfg.users)} per-user setting(s) ([[users]], guide 003)"))
    for user in cfg.users:
        rows.append(("  user", _user(user)))
    if cfg.endpoints.authority:
        rows.append(("authority", cfg.endpoints.authority))
    if cfg.endpoints.ca_bundle:
        rows.append(("CA bundle", cfg.endpoints.ca_bundle))
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        first, *more = str(value).split("\n")
        lines.append(f"{key:<{width}}  {first}")
        lines += [" " * (width + 2) + line for line in more]   # under the value
    return "\n".join(lines)


def _server(cfg, direction: str) -> str:
    """Where the runtime connects, to read aloud: the EWS URL, else the server and
    its port (SMTP and IMAP with their TLS, Graph its URL)."""
    from wizard.config.endpoints import mail_endpoint
    protocol, host, port = mail_endpoint(cfg, direction)
    if protocol == "ews":
        return f"https://{host}:{port}/EWS/Exchange.asmx"
    if protocol == "graph":
        return (cfg.endpoints.graph_url or cfg.cloud.graph_url).rstrip("/")
    tls = {"smtp": " (STARTTLS)", "imap": " (TLS)"}.get(protocol, "")
    return f"{host}, port {port}{tls}"


def _id(value: str) -> str:
    """The ID, and under it the groups and the check letter to read aloud on a call
    (the wizard's ID fields take them back, check letter included)."""
    from wizard.config.fields import normalise_guid
    from wizard.guide.readback import NATO, check_char
    if value and normalise_guid(value):
        check = check_char(value)
        return f"{value}\nread aloud: {group4(value)}  check {check} ({NATO[check.lower()]})"
    return value or "(not set)"


def _user(user) -> str:
    """One [[users]] override; its password is never shown, only whether it is set."""
    from wizard.guide.readback import USER_FLOW_WORDS
    parts = [user.name or "(no name)", USER_FLOW_WORDS.get(user.flow, user.flow)]
    if user.flow == "password":
        parts.append(f"user {user.username or '(not set)'}")
        parts.append("password set" if user.password else "password (not set)")
    if user.sender:
        parts.append(f"sender {user.sender}")
    return "; ".join(parts)


def _expiry(when, today, colour) -> str:
    if when is None:
        return "(unknown: add secret_expires to be warned before it expires)"
    days = (when - today).days
    if days < 0:
        return paint(f"{when.isoformat()}  EXPIRED {-days} days ago: create a new secret (Azure steps 20-22)", "fail", colour)
    if days < 30:
        return paint(f"{when.isoformat()}  WARNING: {days} days left: create the next secret now", "warn", colour)
    return f"{when.isoformat()}  ({days} days left)"
