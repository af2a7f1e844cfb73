"""Answers for `mailwizard init --non-interactive`: every config value from
flags, environment variables or an answers file, merged and checked.

Precedence, highest first::

    flags  >  environment (MAILWIZARD_*)  >  answers file (--answers)  >  existing config  >  defaults

Each value keeps where it came from, so an error names both the config field
and the flag, variable or file that gave the bad value. Values are cleaned and
checked with the same functions as the wizard's fields (wizard.config.fields), then
the whole config with config.validate.

Secrets are never taken as plain flag values unless the user insists
(--client-secret / --password, with a warning): they come from a named
environment variable, a file, $MAILWIZARD_CLIENT_SECRET / $MAILWIZARD_PASSWORD
or the answers file. With keep_references the config gets "env:NAME" /
"file:PATH" instead of the value itself.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "MAILWIZARD_"

# dotted config field -> (flag, environment variable, checker kind)
FIELDS: dict[str, tuple[str, str, str]] = {
    "system": ("--system", "MAILWIZARD_SYSTEM", "choice"),
    "auth.flow": ("--flow", "MAILWIZARD_FLOW", "choice"),
    "protocol": ("--protocol", "MAILWIZARD_PROTOCOL", "protocol"),    # outgoing + incoming (recommend.split)
    "microsoft.cloud": ("--cloud", "MAILWIZARD_CLOUD", "choice"),
    "microsoft.tenant_id": ("--tenant-id", "MAILWIZARD_TENANT_ID", "tenant"),
    "microsoft.client_id": ("--client-id", "MAILWIZARD_CLIENT_ID", "client_id"),
    "auth.secret_expires": ("--secret-expires", "MAILWIZARD_SECRET_EXPIRES", "date"),
    "auth.username": ("--username", "MAILWIZARD_USERNAME", "username"),
    "auth.certificate": ("--certificate", "MAILWIZARD_CERTIFICATE", "path"),
    "auth.thumbprint": ("--thumbprint", "MAILWIZARD_THUMBPRINT", "text"),
    "outgoing.server": ("--server", "MAILWIZARD_SERVER", "server"),
    "outgoing.port": ("--port", "MAILWIZARD_PORT", "port"),
    "incoming.server": ("--incoming-server", "MAILWIZARD_INCOMING_SERVER", "server"),
    "incoming.port": ("--incoming-port", "MAILWIZARD_INCOMING_PORT", "port"),
    "outgoing.sender": ("--sender", "MAILWIZARD_SENDER", "email"),
    "outgoing.test_recipient": ("--test-recipient", "MAILWIZARD_TEST_RECIPIENT", "email"),
    "incoming.poll_minutes": ("--poll-minutes", "MAILWIZARD_POLL_MINUTES", "poll"),
    "endpoints.authority": ("--authority", "MAILWIZARD_AUTHORITY", "text"),
    "endpoints.ca_bundle": ("--ca-bundle", "MAILWIZARD_CA_BUNDLE", "path"),
}
SECRET_FIELDS = {
    # dotted field -> (plain flag, --*-env flag, --*-file flag, environment variable)
    "auth.client_secret": ("--client-secret", "--client-secret-env", "--client-secret-file", "MAILWIZARD_CLIENT_SECRET"),
    "auth.password": ("--password", "--password-env", "--password-file", "MAILWIZARD_PASSWORD"),
}
ACCOUNTS_FLAG, ACCOUNTS_ENV = "--account", "MAILWIZARD_ACCOUNTS"
_BAD = object()   # a value that failed its check (the error is recorded, the value not used)
LABELS = {
    "microsoft.tenant_id": "Directory (tenant) ID", "microsoft.client_id": "Application (client) ID",
    "outgoing.sender": "Sender mailbox", "outgoing.test_recipient": "Test recipient",
}


class AnswerError(Exception):
    """A value that cannot be used, naming the config field and where it came from."""

    def __init__(self, field: str, message: str, source: str | None = None, more: list[str] | None = None):
        self.field, self.message, self.source = field, message, source
        self.more = more or []
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join([_line(self.field, self.message, self.source)] + self.more)


def _line(dotted: str, message: str, source: str | None) -> str:
    if not source:
        return f"[{dotted}] {message}"
    where = source if source.startswith("not given") else f"from {source}"
    return f"[{dotted}] ({where}) {message}"


@dataclass
class Answers:
    cfg: object                                        # wizard.config.schema.Config, merged and checked
    sources: dict[str, str] = field(default_factory=dict)   # dotted field -> where its value came from
    notes: list[str] = field(default_factory=list)          # what was cleaned ("--tenant-id: removed quotes")
    warnings: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)        # every secret value seen, to scrub output
    errors: list[tuple[str, str, str]] = field(default_factory=list)   # (field, message, source)

    def error(self, dotted: str, message: str, source: str) -> None:
        if not any(e[0] == dotted for e in self.errors):
            self.errors.append((dotted, message, source))

    def source(self, dotted: str) -> str:
        import re
        key = re.sub(r"\[\d+\].*$", "", dotted)
        return self.sources.get(dotted) or self.sources.get(key) or "default"


@dataclass
class _Secret:
    value: str              # the secret itself ("" when a reference cannot be resolved)
    reference: str | None   # "env:NAME" / "file:PATH" when it came from one
    source: str
    warnings: list[str] = field(default_factory=list)


def _get(cfg, dotted: str):
    obj = cfg
    *parents, last = dotted.split(".")
    for p in parents:
        obj = getattr(obj, p)
    return getattr(obj, last)


def _set(cfg, dotted: str, value) -> None:
    obj = cfg
    *parents, last = dotted.split(".")
    for p in parents:
        obj = getattr(obj, p)
    setattr(obj, last, value)


def _check(kind: str, dotted: str, raw, source: str, out: Answers):
    """Clean and check one value given as text (or typed, from the answers file)."""
    from datetime import date
    from wizard.config import fields as f

    if kind == "protocol":
        from wizard.guide.recommend import CHOICES
        choice = _clean_text(str(raw), "choice")[0]
        if choice not in CHOICES:
            out.error(dotted, f"unknown protocol '{choice}'; expected one of: {', '.join(CHOICES)}", source)
            return _BAD
        return choice
    if kind == "date" and isinstance(raw, date):
        checked = f.check_secret_expiry(raw)
    elif kind in ("port", "poll") and isinstance(raw, int):
        checked = f.check_port(raw) if kind == "port" else f.check_poll_minutes(raw)
    else:
        text = raw if isinstance(raw, str) else str(raw)
        checked = {
            "tenant": f.check_tenant_id, "client_id": f.check_client_id,
            "date": f.check_secret_expiry, "username": f.check_username, "server": f.check_server,
            "port": f.check_port, "poll": f.check_poll_minutes,
            "email": lambda t: f.check_email(t, LABELS.get(dotted, "E-mail address")),
        }.get(kind, lambda t: f.Checked(*_clean_text(t, kind)))(text)
    if not checked.ok:
        out.error(dotted, checked.error, source)
        return _BAD
    for note in checked.notes:
        out.notes.append(f"{source}: {note}")
    if checked.warning:
        out.warnings.append(f"[{dotted}] {checked.warning}")
    return checked.value


def _clean_text(text: str, kind: str):
    from wizard.config.fields import clean
    value, notes = clean(text)
    if kind == "choice":
        value = value.lower()
    if kind == "path" and value:
        value = str(Path(value).expanduser())
    return value, None, notes


def _flag_dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _read_secret_file(path: str, flag: str, dotted: str) -> _Secret:
    from wizard.config.schema import ConfigError, resolve_secret
    full = str(Path(path).expanduser().resolve())
    try:
        value = resolve_secret(f"file:{full}", dotted)
    except ConfigError as exc:
        raise AnswerError(dotted, exc.message, f"{flag} {path}") from None
    s = _Secret(value, f"file:{full}", f"{flag} {path}")
    if os.stat(full).st_mode & (stat.S_IRGRP | stat.S_IROTH):
        s.warnings.append(f"{flag} {path}: the file can be read by other users; chmod 600 it.")
    return s


def _secret_from_flags(args, env, dotted: str) -> _Secret | None:
    plain, env_flag, file_flag, env_name = SECRET_FIELDS[dotted]
    name = getattr(args, _flag_dest(env_flag), None)
    if name:
        if name not in env:
            raise AnswerError(dotted, f"environment variable {name} is not set. Export it first "
                                      f"(e.g. read -rs {name}; export {name}).", f"{env_flag} {name}")
        return _Secret(env[name], f"env:{name}", f"{env_flag} {name}")
    path = getattr(args, _flag_dest(file_flag), None)
    if path:
        return _read_secret_file(path, file_flag, dotted)
    value = getattr(args, _flag_dest(plain), None)
    if value is not None:
        return _Secret(value, None, plain)
    return None


def load_answers_file(path: str | os.PathLike) -> tuple[dict, object]:
    """(plain TOML data, typed Config) of an answers file; raises AnswerError
    naming the file, line and field for syntax errors, wrong types and unknown keys."""
    from wizard.config.schema import ConfigError
    from wizard.config.files import parse_text

    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnswerError("--answers", f"file {p} not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnswerError("--answers", f"file {p} cannot be read ({getattr(exc, 'strerror', None) or exc}).") from None
    try:
        cfg, _problems = parse_text(text, p)   # value problems are judged after merging
    except ConfigError as exc:
        where = f"answers file {p}" + (f":{exc.line}" if exc.line else "")
        raise AnswerError(exc.field or "--answers", exc.message, where,
                          more=[pr.render(str(p)) for pr in exc.problems[1:]]) from None
    import tomlkit
    return tomlkit.parse(text).unwrap(), cfg


def gather(args, *, base=None, env: dict | None = None, keep_references: bool = False) -> Answers:
    """Merge defaults < base (existing config) < answers file < env < flags into
    a checked Config. Raises AnswerError when a value cannot be used: the first
    problem (field, message, source), the others in ``more`` (every flag/env
    value checked with wizard.config.fields, then the whole config with config.validate).
    ``env`` replaces os.environ for reading values (tests); env:/file:
    references are resolved from the process environment, as `check` does."""
    from wizard.config.schema import (Config, FLOW_KEYS, IncomingAccount, copy_config, validate)

    env = dict(os.environ if env is None else env)
    cfg = copy_config(base) if base is not None else Config()
    out = Answers(cfg=cfg)
    default_or_existing = "existing config" if base is not None else "default"
    for dotted in list(FIELDS) + list(SECRET_FIELDS) + ["incoming.accounts"]:
        out.sources[dotted] = default_or_existing
    secrets: dict[str, _Secret] = {}
    for dotted in SECRET_FIELDS:
        value = _get(cfg, dotted)
        if value:
            secrets[dotted] = _Secret(value, None, default_or_existing)

    # answers file
    answers_path = getattr(args, "answers", None)
    if answers_path:
        data, typed = load_answers_file(answers_path)
        label = f"answers file {answers_path}"
        literal_secret = False
        for key in ("version", "system"):
            if key in data:
                setattr(cfg, key, getattr(typed, key))
                out.sources[key] = label
        for section in ("microsoft", "auth", "outgoing", "incoming", "endpoints"):
            for key in data.get(section, {}):
                dotted = f"{section}.{key}"
                value = _get(typed, dotted)
                if dotted in SECRET_FIELDS:
                    ref = value if value.startswith(("env:", "file:")) else None
                    literal_secret = literal_secret or (ref is None and bool(value))
                    secrets[dotted] = _Secret(_resolve_or_empty(value, dotted), ref, label)
                    out.sources[dotted] = label
                    continue
                if dotted in FIELDS and value is not None:
                    value = _check(FIELDS[dotted][2], dotted, value, label, out)
                if value is not _BAD:
                    _set(cfg, dotted, value)
                out.sources[dotted] = label
        if "users" in data:
            cfg.users = typed.users
            out.sources["users"] = label
        if "alerts" in data:            # [alerts] (alert mails from `check`), as in the config
            cfg.alerts, cfg.has_alerts = typed.alerts, True
            out.sources["alerts"] = label
        for acc in typed.incoming.accounts + typed.users:
            if acc.password:
                literal_secret = literal_secret or not acc.password.startswith(("env:", "file:"))
                out.secrets.append(_resolve_or_empty(acc.password, "password"))
        if literal_secret:
            mode = os.stat(Path(answers_path).expanduser()).st_mode
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                out.warnings.append(f"answers file {answers_path} holds a secret and can be read by other users; chmod 600 it.")

    # environment, then flags
    for layer in ("env", "flag"):
        for dotted, (flag, env_name, kind) in FIELDS.items():
            if layer == "env":
                raw, source = env.get(env_name), f"${env_name}"
                if raw == "":
                    raw = None
            else:
                raw, source = getattr(args, _flag_dest(flag), None), flag
            if raw is None:
                continue
            value = _check(kind, dotted, raw, source, out)
            if value is not _BAD and dotted == "protocol":
                _set_protocol(cfg, value, source, out)
            elif value is not _BAD:
                _set(cfg, dotted, value)
            out.sources[dotted] = source
        for dotted, (_plain, _ef, _ff, env_name) in SECRET_FIELDS.items():
            if layer == "env":
                s = _Secret(env[env_name], f"env:{env_name}", f"${env_name}") if env.get(env_name) else None
            else:
                try:
                    s = _secret_from_flags(args, env, dotted)
                except AnswerError as exc:
                    out.error(exc.field, exc.message, exc.source)
                    out.sources[dotted] = exc.source
                    continue
            if s is not None:
                secrets[dotted] = s
                out.sources[dotted] = s.source
                out.warnings += s.warnings
        addresses = None
        if layer == "env" and env.get(ACCOUNTS_ENV):
            addresses, source = env[ACCOUNTS_ENV].replace(",", " ").split(), f"${ACCOUNTS_ENV}"
        elif layer == "flag" and getattr(args, "account", None):
            addresses, source = args.account, ACCOUNTS_FLAG
        if addresses is not None:
            known = {a.address.lower(): a for a in cfg.incoming.accounts}
            accounts = []
            for n, address in enumerate(addresses):
                value = _check("email", f"incoming.accounts[{n}].address", address, source, out)
                if value is not _BAD:
                    accounts.append(known.get(value.lower()) or IncomingAccount(address=value))
            dropped = [a.address for a in cfg.incoming.accounts
                       if a.address and all(a is not b for b in accounts)]
            if dropped:      # never silently: the accounts of the existing config (or answers file) go
                out.warnings.append(
                    f"{source} replaces the incoming accounts ({out.sources.get('incoming.accounts')}): "
                    f"{', '.join(dropped)} will no longer be read; give each with {ACCOUNTS_FLAG} to keep it.")
            cfg.incoming.accounts = accounts
            out.sources["incoming.accounts"] = source

    # keys of another flow: drop them when they came from the existing config or
    # the environment; given explicitly (flag, answers file) validate() refuses them.
    flow = cfg.auth.flow
    own = set(FLOW_KEYS.get(flow, ()))
    for other_keys in FLOW_KEYS.values():
        for key in other_keys:
            dotted = f"auth.{key}"
            if key in own:
                continue
            src = out.sources.get(dotted, "default")
            if src in ("existing config", "default") or src.startswith("$"):
                _set(cfg, dotted, None if key.endswith("_expires") else "")
                secrets.pop(dotted, None)

    # secrets: check the value, store the value or the reference
    for dotted, s in secrets.items():
        out.secrets.append(s.value)
        if s.source in ("existing config", "default"):
            continue   # kept as it is (literal or reference); validate() judges it
        if s.reference and s.source.startswith("answers file"):
            _set(cfg, dotted, s.reference)   # the user wrote a reference: keep it; validate() resolves it
            continue
        if dotted == "auth.client_secret":
            from wizard.config.fields import check_client_secret
            checked = check_client_secret(s.value)
            if not checked.ok:
                out.error(dotted, checked.error, s.source)
                continue
            if checked.warning:
                out.warnings.append(f"[{dotted}] {checked.warning}")
            if checked.notes:
                out.notes += [f"{s.source}: {n}" for n in checked.notes]
            value = checked.value
        else:
            from wizard.config.fields import check_password
            checked = check_password(s.value)
            if not checked.ok:
                out.error(dotted, checked.error, s.source)
                continue
            value = s.value
        if s.reference and keep_references:
            _set(cfg, dotted, s.reference)
        else:
            _set(cfg, dotted, value)
    for plain in ("--client-secret", "--password"):
        if out.sources.get("auth.client_secret" if plain == "--client-secret" else "auth.password") == plain:
            out.warnings.append(f"{plain} puts the secret in the shell history and in `ps` output; "
                                f"use {plain}-env NAME or {plain}-file FILE instead.")

    _system_defaults(cfg, out, fresh=base is None)
    if cfg.auth.flow == "client_secret" and cfg.auth.secret_expires is None:
        out.warnings.append("[auth.secret_expires] not given (--secret-expires YYYY-MM-DD): "
                            "`mailwizard list` and `check` cannot warn before the secret expires.")
    problems = validate(cfg)
    errors = [p for p in problems if not p.warning]
    for p in problems:
        if p.warning and not any(w.startswith(f"[{p.field}]") for w in out.warnings):
            out.warnings.append(f"[{p.field}] {p.message}")
    for p in errors:
        out.error(p.field, p.message, _where(out.source(p.field), p.field))
    if out.errors:
        (fld, msg, src), rest = out.errors[0], out.errors[1:]
        raise AnswerError(fld, msg, src, [_line(*e) for e in rest])
    out.secrets = [s for s in out.secrets if s]
    return out


def _set_protocol(cfg, choice: str, source: str, out: Answers) -> None:
    from wizard.guide.recommend import split
    cfg.outgoing.protocol, cfg.incoming.protocol = split(choice)
    out.sources["outgoing.protocol"] = out.sources["incoming.protocol"] = source


def _system_defaults(cfg, out: Answers, fresh: bool) -> None:
    """What a config gets when not given: the SMTP host and port for SMTP, and for
    Efecte ESM the incoming mailbox it reads (the service account's own). The protocol
    stays EWS for a new config as before (scripts rely on it); when the wizard would
    preselect another for the system (Efecte ESM: SMTP + IMAP, generic: Graph) a
    warning names --protocol."""
    from wizard.config.schema import IncomingAccount
    from wizard.config.mailboxes import default_incoming
    from wizard.guide.recommend import choice_of, defaults
    given = ("outgoing.protocol", "incoming.protocol")
    wanted = defaults(cfg.system)[0]
    if fresh and all(out.sources.get(k, "default") == "default" for k in given) and \
            choice_of(cfg.outgoing.protocol, cfg.incoming.protocol) != wanted:
        out.warnings.append(f"[outgoing.protocol] not given (--protocol): {cfg.outgoing.protocol} is used; the "
                            f"wizard preselects {wanted} for {cfg.system} (add --protocol {wanted}).")
    if cfg.outgoing.protocol == "smtp":
        from wizard.config.clouds import SMTP_PORT
        if out.sources.get("outgoing.server") == "default":
            cfg.outgoing.server = cfg.cloud.smtp_host
        if out.sources.get("outgoing.port") == "default":
            cfg.outgoing.port = SMTP_PORT
    address = default_incoming(cfg)
    if address and out.sources.get("incoming.accounts") in ("default", "existing config"):
        cfg.incoming.accounts = [IncomingAccount(address=address)]
        out.notes.append(f"[incoming.accounts] Efecte ESM reads its mail from a mailbox by "
                         f"{cfg.incoming.protocol.upper()}: {address}, the service account's own "
                         f"({ACCOUNTS_FLAG} ADDRESS to name another).")


def _resolve_or_empty(value: str, dotted: str) -> str:
    from wizard.config.schema import ConfigError, resolve_secret
    try:
        return resolve_secret(value, dotted)
    except ConfigError:
        return ""


def _where(source: str, dotted: str) -> str:
    """'default' -> 'not given: --flag, $VARIABLE or the answers file' for messages."""
    if source != "default":
        return source
    if dotted in SECRET_FIELDS:
        _plain, env_flag, file_flag, env_name = SECRET_FIELDS[dotted]
        return f"not given: use {env_flag} NAME, {file_flag} FILE or ${env_name}"
    if dotted in FIELDS:
        flag, env_name, _kind = FIELDS[dotted]
        return f"not given: use {flag}, ${env_name} or the answers file"
    return "not given"
