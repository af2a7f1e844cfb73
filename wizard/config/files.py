"""Reading and writing the TOML config file.

Writes are atomic (temp file in the same folder + rename), keep the previous
file as ``<name>.bak``, preserve the user's comments and key order, and create
files with mode 0600 (they may hold a secret).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
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
    """``<name>.bak``: the previous version, beside the real file (through a symlink)."""
    target = real_target(path)
    return target.with_name(target.name + ".bak")


class _Locator:
    """Finds the line of a dotted key in TOML text, for messages. The n-th
    [[name]] table is ``name[n]`` (0-based, as the fields are named), so a key
    of the second account is found on its own line, not on the first's."""

    HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
    KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")

    def __init__(self, text: str):
        self.index: dict[str, int] = {}
        counts: dict[str, int] = {}
        section = ""
        for n, line in enumerate(text.splitlines(), 1):
            m = self.HEADER_RE.match(line)
            if m:
                name = re.sub(r"\s*\.\s*", ".", m.group(2).replace('"', "")).strip()
                self.index.setdefault(name, n)
                section = name
                if m.group(1) == "[[":
                    counts[name] = counts.get(name, 0) + 1
                    section = f"{name}[{counts[name] - 1}]"
                    self.index.setdefault(section, n)
                continue
            m = self.KEY_RE.match(line)
            if m:
                plain = re.sub(r"\[\d+\]$", "", section)
                if plain != section:     # "incoming.accounts.address": the first one's
                    self.index.setdefault(f"{plain}.{m.group(1)}", n)
                key = f"{section}.{m.group(1)}" if section else m.group(1)
                self.index.setdefault(key, n)

    def __call__(self, key: str) -> int | None:
        # "incoming.accounts[1].address" (or that table's header), else the
        # key without numbers ("alerts.to[1]": a list's item is on its key's line)
        while "[" in key:
            if key in self.index:
                return self.index[key]
            if "." not in key:
                break
            key = key.rsplit(".", 1)[0]
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
    except toml.TOMLDecodeError as exc:
        data = _parse_for_message(text, path, exc)
    locate = _Locator(text)
    cfg, problems = from_dict(data, locate)
    if problems:
        first = problems[0]
        raise ConfigError(first.message, field=first.field, path=path, line=first.line, problems=problems)
    return cfg, validate(cfg, locate=locate)


def _parse_for_message(text: str, path, error=None) -> dict:
    """Text the standard parser refused (``error``), parsed again by tomlkit (it
    returns the data if it accepts it). A key given twice keeps tomlkit's words,
    which name the key; anything else is said in plain words from the standard
    parser's line and column (wizard/toml_errors.py)."""
    import tomlkit   # imported where used: the wizard starts without it (~30 ms)
    from tomlkit.exceptions import ParseError, TOMLKitError
    try:
        return tomlkit.parse(text).unwrap()
    except ParseError as exc:
        from wizard.config.toml_errors import explain, position
        msg = str(exc)
        msg = re.sub(r"\s*at line \d+ col \d+\s*$", "", msg)
        if "already exists" in msg or error is None:
            hint = ("Each key may appear only once in a table." if "already exists" in msg
                    else "Check quotes around texts and '=' between key and value.")
            # the line where the standard parser stopped: the key's second
            # appearance (tomlkit says where its table ends)
            line = exc.line if error is None else position(text, error)[0]
            raise ConfigError(f"TOML syntax error: {msg.rstrip('.')}. {hint}", path=path, line=line) from None
        line, message = explain(text, error)
        raise ConfigError(message, path=path, line=line) from None
    except TOMLKitError as exc:  # duplicate keys and the like
        raise ConfigError(f"TOML error: {exc}", path=path) from None


def load(path: str | os.PathLike, *, strict: bool = True) -> Config:
    """Load and validate a config file. With strict=True any value error raises
    ConfigError naming the file, line and field."""
    path = Path(path)
    try:
        text = _read_text(path)
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


def _read_text(path: Path) -> str:
    """The file's text (-sig: a BOM from Windows Notepad is not TOML); what was
    read is remembered, for ``save(expect=SEEN)``."""
    data = path.read_bytes()
    _remember(path, data)
    return data.decode("utf-8-sig")


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "is not a UTF-8 text file: is this the config file? (TOML, saved as UTF-8)"
    return f"cannot be read: {getattr(exc, 'strerror', None) or exc}"


def load_lenient(path: str | os.PathLike) -> tuple[Config | None, list[Problem], str | None]:
    """For the wizard: load whatever can be loaded to start from.
    Returns (config or None, problems, fatal error text or None)."""
    try:
        text = _read_text(Path(path))
    except FileNotFoundError:
        _remember(path, None)
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


ANY = object()      # save(expect=ANY): write whatever the file holds now
SEEN = object()     # save(expect=SEEN): refuse when the file changed since this process read or wrote it
_seen: dict[str, str | None] = {}   # real path -> fingerprint of what this process last read or wrote


def read_state(path: Path) -> dict:
    """A small JSON state file of ours (alerts sent, sign-in times): {} when it is
    missing, unreadable or not a JSON object, so a damaged file only forgets."""
    import json
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def real_target(path: str | os.PathLike) -> Path:
    """The file a write must replace: through symlinks to the file they point at
    (``/etc/erp/mailwizard.toml -> /srv/erp/mailwizard.toml``), so the link stays a link."""
    return Path(os.path.realpath(Path(path).expanduser()))


def good_path(path: Path) -> Path:
    """``<name>.good``: the last config that passed the connection test, beside the target."""
    target = real_target(path)
    return target.with_name(target.name + ".good")


def fingerprint(path: str | os.PathLike) -> str | None:
    """A digest of the file's bytes (None when it does not exist), to notice a
    file changed by someone else between reading and writing it."""
    try:
        data = real_target(path).read_bytes()
    except FileNotFoundError:
        return None
    return _digest(data)


def _digest(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


def _remember(path, data: bytes | None) -> None:
    _seen[str(real_target(path))] = None if data is None else _digest(data)


# -- failures in plain words ----------------------------------------------------
_REASONS = {
    "ENOSPC": "the disk is full",
    "EDQUOT": "your disk quota is used up",
    "EACCES": "permission denied: you may not write there",
    "EPERM": "permission denied: you may not write there",
    "EROFS": "the file system is read-only",
    "ENOENT": "the folder does not exist",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "EISDIR": "that path is a folder",
    "EIO": "the disk reported an input/output error",
    "EFBIG": "the file is too large for that disk",
}


def plain_reason(exc: BaseException) -> str:
    """What an OSError means, in plain words (never '[Errno 28]')."""
    import errno as errno_names
    if isinstance(exc, WriteError):
        return exc.reason
    name = errno_names.errorcode.get(getattr(exc, "errno", None) or -1, "")
    if name in _REASONS:
        return _REASONS[name]
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


class WriteError(OSError):
    """A file could not be written. Nothing partial was left behind and the file
    (and its .bak) is as before. ``strerror`` and ``str()`` are plain words."""

    def __init__(self, path, reason: str, errno: int | None = None):
        self.path = Path(path)
        self.reason = reason
        text = f"{reason}. {self.path.name} was not changed and no partial file was left"
        super().__init__(errno, text)

    def __str__(self) -> str:
        return self.strerror


class ConfigChanged(WriteError):
    """The file changed since it was read (another mailwizard, or an editor)."""

    def __init__(self, path):
        super().__init__(path, "it changed since it was read (another mailwizard or an editor wrote it meanwhile)")


@contextlib.contextmanager
def locked(path, timeout: float = 10.0):
    """Hold an exclusive lock (``flock`` on ``.<name>.lock`` beside the real
    target) while a file is written, so two writers never interleave. Yields
    the real target. Waits up to ``timeout`` seconds for another writer. The
    lock file is removed when done (a waiter that locked a removed file tries again)."""
    target = real_target(path)
    try:
        import fcntl
    except ImportError:     # Windows: no flock; writes are still atomic
        yield target
        return
    lock = target.with_name(f".{target.name}.lock")
    deadline = time.monotonic() + timeout
    while True:
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise WriteError(target, plain_reason(exc), exc.errno) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise WriteError(target, "another mailwizard is writing it right now; "
                                         "try again when it has finished") from None
            time.sleep(0.05)
            continue
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)        # the holder before us removed that file: lock the new one
    try:
        yield target
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


def save(cfg: Config, path: str | os.PathLike, *, tested: bool = False, expect=ANY) -> Path:
    """Write cfg to path atomically, keeping the old file as .bak and the
    user's comments; through a symlink, the file it points at is written (backup
    beside it) and the link stays. With ``tested`` (the connection test passed
    for cfg) the same text is also kept as ``<name>.good``. ``expect``: ANY, SEEN
    (the file as this process last read or wrote it) or a ``fingerprint()``;
    when the file holds something else, ConfigChanged is raised and nothing is
    written. Failures raise WriteError (an OSError) in plain words. Returns the
    path given. A command that read the file earlier and changes a part of it
    uses ``update`` (or ``changes.save_changes``) instead: they never undo another writer."""
    path = Path(path).expanduser()
    with locked(path) as target:
        _save_locked(cfg, target, tested, expect)
    return path


def _save_locked(cfg: Config, target: Path, tested: bool, expect) -> None:
    current = None
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WriteError(target, plain_reason(exc), exc.errno) from None
    if expect is not ANY:
        wanted = _seen.get(str(target), _digest(current) if current is not None else None) \
            if expect is SEEN else expect
        now = None if current is None else _digest(current)
        if now != wanted:
            raise ConfigChanged(target)
    # not UTF-8 (a wrong --config): start afresh, the old bytes are kept as .bak
    existing = None if current is None else current.decode("utf-8-sig", errors="replace")
    text = render(cfg, existing)
    _write(target, text.encode("utf-8"), backup=current is not None, mode=0o600)
    if tested:
        _write(good_path(target), text.encode("utf-8"), backup=False, mode=0o600)
    _remember(target, text.encode("utf-8"))


def update(path: str | os.PathLike, change, *, strict: bool = True):
    """Read, change and write the config holding its lock, so that what another
    writer saved meanwhile (a second ``relay add-client``, ``rotate``, an editor)
    is kept: ``change(cfg)`` gets the file as it is now. Returns what it returns.
    Raises ConfigError (the file is broken or gone) or WriteError, writing nothing."""
    path = Path(path).expanduser()
    with locked(path) as target:
        cfg = load(target, strict=strict)
        result = change(cfg)
        _save_locked(cfg, target, False, ANY)
    return result


def write_private(path: Path, text: str | bytes, *, backup: bool = False, mode: int = 0o600,
                  lock: bool = False) -> None:
    """Atomically write text (or bytes) to path with mode 0600 (or ``mode``)
    from the first byte on; with backup=True the current file is first kept as
    <name>.bak, written the same way (0600, temp file, fsync, rename). Through a
    symlink the target is written and the link kept. ``lock``: hold the file's
    lock (see ``locked``) meanwhile. Failures raise WriteError (plain words),
    leaving no temp file and the file and its .bak as they were."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if lock:
        with locked(path) as target:
            _write(target, data, backup=backup, mode=mode)
    else:
        _write(real_target(path), data, backup=backup, mode=mode)


def _write(target: Path, data: bytes, *, backup: bool, mode: int) -> None:
    temps: list[str] = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temps.append(_temp_file(target.parent, target.name, data, mode))
        if backup and target.exists():
            bak = backup_path(target)
            temps.append(_temp_file(target.parent, bak.name, target.read_bytes(), 0o600))
            os.replace(temps[-1], bak)
            temps.pop()
        os.replace(temps[0], target)
        temps.clear()
        sync_folder(target.parent)
    except OSError as exc:
        _remove(temps)
        if isinstance(exc, WriteError):
            raise
        raise WriteError(target, plain_reason(exc), exc.errno) from None
    except BaseException:
        _remove(temps)
        raise


def _temp_file(folder: Path, name: str, data: bytes, mode: int) -> str:
    """A temp file in folder holding data, mode ``mode`` from the start, on disk (fsync)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _remove([tmp])
        raise
    os.close(fd)
    return tmp


def sync_folder(folder: Path) -> None:
    """A rename in ``folder`` on disk too (best effort: Windows cannot open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(paths) -> None:
    for tmp in paths:
        try:
            os.unlink(tmp)
        except OSError:
            pass
