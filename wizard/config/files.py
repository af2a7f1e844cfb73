"""Reading and writing the TOML config file.

Writes are atomic (temp file in the same folder + rename), keep the previous
file as ``<name>.bak``, preserve the user's comments and key order, and create
files with mode 0600 (they may hold a secret).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from wizard.config.schema import Config, ConfigError, Problem, from_dict, to_dict, validate

APP_NAME = "mailwizard"
ENV_CONFIG = "MAILWIZARD_CONFIG"

HEADER = """\
mailwizard configuration (schema version 1).
Written by `mailwizard`; you may edit it by hand and add comments: they are kept.
Secrets may be given literally, as "env:VARIABLE" or as "file:/path/to/file".
"""


def default_path() -> Path:
    from platformdirs import user_config_path
    return user_config_path(APP_NAME, appauthor=False) / "mailwizard.toml"


ENV_PROFILE = "MAILWIZARD_PROFILE"
PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def profile_path(name: str) -> Path:
    """Where profile NAME lives: <user config dir>/profiles/NAME.toml, beside
    the default config (test and production tenants side by side)."""
    if not PROFILE_RE.match(name or ""):
        raise ConfigError(f"profile name '{name}' is not allowed: use letters, digits, '.', '_' or '-' (e.g. test, production)",
                          field="--profile")
    return default_path().parent / "profiles" / f"{name}.toml"


def resolve_path(cli_path: str | os.PathLike | None = None, profile: str | None = None) -> Path:
    """--config wins, then --profile, then $MAILWIZARD_CONFIG, then
    $MAILWIZARD_PROFILE, then the user config dir."""
    if cli_path:
        return Path(cli_path).expanduser()
    if profile:
        return profile_path(profile)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    if os.environ.get(ENV_PROFILE):
        return profile_path(os.environ[ENV_PROFILE])
    return default_path()


def list_profiles() -> list[tuple[str, Path]]:
    """('default', path) when the default config exists, then every profile."""
    out = []
    if default_path().exists():
        out.append(("default", default_path()))
    folder = default_path().parent / "profiles"
    if folder.is_dir():
        out += sorted((p.stem, p) for p in folder.glob("*.toml"))
    return out


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


class _Locator:
    """Finds the line of a dotted key in TOML text, for messages."""

    HEADER_RE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
    KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")

    def __init__(self, text: str):
        self.index: dict[str, int] = {}
        section = ""
        for n, line in enumerate(text.splitlines(), 1):
            m = self.HEADER_RE.match(line)
            if m:
                section = m.group(1).replace('"', "").strip()
                self.index.setdefault(section, n)
                continue
            m = self.KEY_RE.match(line)
            if m:
                key = f"{section}.{m.group(1)}" if section else m.group(1)
                self.index.setdefault(key, n)

    def __call__(self, key: str) -> int | None:
        key = re.sub(r"\[\d+\]", "", key)
        while key:
            if key in self.index:
                return self.index[key]
            if "." not in key:
                return None
            key = key.rsplit(".", 1)[0]
        return None


def standard_toml():
    """The standard library's TOML reader (tomli before Python 3.11). Files are
    read with it: it loads several times quicker than tomlkit, which is only
    needed to write them with their comments kept."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib


def parse_text(text: str, path: str | Path | None = None) -> tuple[Config, list[Problem]]:
    """Parse TOML text into a Config. Raises ConfigError for syntax errors and
    wrong types/unknown keys; returns value problems (errors and warnings)."""
    toml = standard_toml()
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError:
        data = _parse_for_message(text, path)
    locate = _Locator(text)
    cfg, problems = from_dict(data, locate)
    if problems:
        first = problems[0]
        raise ConfigError(first.message, field=first.field, path=path, line=first.line, problems=problems)
    return cfg, validate(cfg, locate=locate)


def _parse_for_message(text: str, path) -> dict:
    """Text the standard parser refused, parsed again by tomlkit, whose errors give
    the line and column the messages name (it returns the data if it accepts it)."""
    import tomlkit   # imported where used: the wizard starts without it (~30 ms)
    from tomlkit.exceptions import ParseError, TOMLKitError
    try:
        return tomlkit.parse(text).unwrap()
    except ParseError as exc:
        msg = str(exc)
        msg = re.sub(r"\s*at line \d+ col \d+\s*$", "", msg)
        hint = ("Each key may appear only once in a table." if "already exists" in msg
                else "Check quotes around texts and '=' between key and value.")
        raise ConfigError(f"TOML syntax error at column {exc.col}: {msg.rstrip('.')}. {hint}",
                          path=path, line=exc.line) from None
    except TOMLKitError as exc:  # duplicate keys and the like
        raise ConfigError(f"TOML error: {exc}", path=path) from None


def load(path: str | os.PathLike, *, strict: bool = True) -> Config:
    """Load and validate a config file. With strict=True any value error raises
    ConfigError naming the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")     # -sig: a BOM from Windows Notepad is not TOML
    except FileNotFoundError:
        raise ConfigError("file not found. Run `mailwizard` to create it, or pass --config PATH.", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_unreadable(exc), path=path) from None
    cfg, problems = parse_text(text, path)
    errors = [p for p in problems if not p.warning]
    if strict and errors:
        first = errors[0]
        raise ConfigError(first.message, field=first.field, path=path, line=first.line, problems=errors)
    return cfg


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "is not a UTF-8 text file: is this the config file? (TOML, saved as UTF-8)"
    return f"cannot be read: {getattr(exc, 'strerror', None) or exc}"


def load_lenient(path: str | os.PathLike) -> tuple[Config | None, list[Problem], str | None]:
    """For the wizard: load whatever can be loaded to start from.
    Returns (config or None, problems, fatal error text or None)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None, [], None
    except (OSError, UnicodeDecodeError) as exc:
        return None, [], f"{path}: {_unreadable(exc)}"
    try:
        cfg, problems = parse_text(text, path)
    except ConfigError as exc:
        return None, exc.problems, exc.render()
    return cfg, problems, None


def render(cfg: Config, existing_text: str | None = None) -> str:
    """The TOML text for cfg, merged into existing_text (comments kept)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    data = to_dict(cfg)
    if existing_text:
        try:
            doc = tomlkit.parse(existing_text)
        except TOMLKitError:
            doc = _new_document()
    else:
        doc = _new_document()
    _merge(doc, data)
    return tomlkit.dumps(doc)


def _new_document():
    import tomlkit
    doc = tomlkit.document()
    for line in HEADER.splitlines():
        doc.add(tomlkit.comment(line))
    return doc


def _merge(container, data: dict) -> None:
    """Update a tomlkit container in place: keep existing keys' positions and
    comments, append new keys, drop keys whose value became empty."""
    import tomlkit
    for key in list(container.keys()):
        if key not in data:
            del container[key]
    for key, value in data.items():
        if isinstance(value, dict):
            if key in container and isinstance(container[key], dict):
                _merge(container[key], value)
            else:
                table = tomlkit.table()
                _merge(table, value)
                container[key] = table
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            existing = container.get(key)
            if isinstance(existing, list) and len(existing) == len(value) and all(isinstance(t, dict) for t in existing):
                for table, new in zip(existing, value):
                    _merge(table, new)
            else:
                aot = tomlkit.aot()
                for item in value:
                    table = tomlkit.table()
                    _merge(table, item)
                    aot.append(table)
                container[key] = aot
        else:
            if key in container and _plain(container[key]) == value:
                continue
            container[key] = value


def _plain(item):
    return item.unwrap() if hasattr(item, "unwrap") else item


def save(cfg: Config, path: str | os.PathLike) -> Path:
    """Write cfg to path atomically, keeping the old file as .bak and the
    user's comments. Returns the path written."""
    path = Path(path).expanduser()
    existing = None
    if path.exists():
        # not UTF-8 (a wrong --config): start afresh, the old bytes are kept as .bak
        existing = path.read_bytes().decode("utf-8-sig", errors="replace")
    text = render(cfg, existing)
    write_private(path, text, backup=existing is not None)
    return path


def write_private(path: Path, text: str | bytes, *, backup: bool = False, mode: int = 0o600) -> None:
    """Atomically write text (or bytes) to path with mode 0600 (or ``mode``)
    from the first byte on; with backup=True the current file is first copied
    to <name>.bak (0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if backup and path.exists():
            bak = backup_path(path)
            shutil.copyfile(path, bak)
            os.chmod(bak, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
