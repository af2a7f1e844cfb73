"""Drafts: the values typed in the wizard so far, kept so that a dropped SSH
session or a killed wizard can continue where it stopped.

One draft per config path (so profiles never mix), in the user state dir
(``~/.local/state/mailwizard/drafts/`` on Linux), written atomically with mode
0600 by ``config_io.write_private``. Secrets (client secret, passwords) are
kept only when the user agreed (``keep_secrets=True``); otherwise they are left
out and listed in ``missing_secrets`` so the wizard asks for them again.
``env:``/``file:`` references are not secrets and are always kept.

A live wizard owns the draft it writes: it holds an ``flock`` on
``<draft>.owner`` (with its process id) for as long as it runs, so the kernel
lets go when it ends, however it ends. Another wizard on the same config sees
``Draft.owner`` (that pid) and must neither write nor delete that draft
(``DraftBusy``); ``discard_draft`` leaves it alone.

File format (TOML): the config keys as in the config file, plus a ``[draft]``
table with the bookkeeping. A draft may be incomplete, so loading never runs
the strict validation, and a damaged draft is ignored (``load_draft`` returns
None) rather than stopping the wizard.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

DRAFT_FORMAT = 1
STAGES = ("target", "registration", "ids", "mail", "test", "save")
SECRET_HINTS = ("secret", "password")   # raw input keys containing these are secrets


@dataclass
class Draft:
    config_path: Path           # the config this draft is for
    cfg: object                 # wizard.config.schema.Config (may be incomplete / invalid)
    stage: str                  # the wizard screen to continue at (see STAGES)
    saved_at: datetime          # UTC
    secrets_kept: bool
    missing_secrets: list[str] = field(default_factory=list)   # dotted fields to re-ask, e.g. "auth.client_secret"
    raw: dict[str, str] = field(default_factory=dict)          # input texts that are not (yet) valid values
    path: Path | None = None    # the draft file
    owner: int | None = None    # pid of another live wizard that owns it (None: nobody else)

    def describe(self, now: datetime | None = None) -> str:
        """One or two lines for the resume prompt."""
        now = now or datetime.now(timezone.utc)
        age = _age(now - self.saved_at)
        text = f"Unfinished setup for {self.config_path}, saved {age} ago at the '{self.stage}' step."
        if self.owner is not None:
            text += f"\nAnother mailwizard{_pid(self.owner)} is working on it right now."
        if self.missing_secrets:
            names = ", ".join(_SECRET_LABELS.get(re.sub(r"\[\d+\]", "[]", m), m) for m in self.missing_secrets)
            text += f"\nNot kept, to type again: {names}."
        return text


_SECRET_LABELS = {
    "auth.client_secret": "the client secret",
    "auth.password": "the password",
    "incoming.accounts[].password": "an incoming account's password",
    "users[].password": "a user's password",
}


def _age(delta) -> str:
    secs = max(0, int(delta.total_seconds()))
    if secs < 90:
        return f"{secs} s"
    if secs < 90 * 60:
        return f"{secs // 60} min"
    if secs < 48 * 3600:
        return f"{secs // 3600} h"
    return f"{secs // 86400} days"


def drafts_dir() -> Path:
    from platformdirs import user_state_path
    return user_state_path("mailwizard", appauthor=False) / "drafts"


def _key(config_path) -> Path:
    return Path(os.path.abspath(Path(config_path).expanduser()))


def draft_path(config_path) -> Path:
    """Where the draft for config_path lives: drafts/<config name>-<hash of its full path>.toml."""
    full = _key(config_path)
    digest = hashlib.sha256(str(full).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", full.stem)[:40] or "config"
    return drafts_dir() / f"{stem}-{digest}.toml"


class DraftBusy(OSError):
    """Another live wizard owns this draft: it is neither written nor removed."""

    def __init__(self, pid: int | None):
        self.pid = pid
        super().__init__(None, f"another mailwizard{_pid(pid)} is working on this config right now; "
                               "its draft is left alone and this one keeps none")

    def __str__(self) -> str:
        return self.strerror


def _pid(pid) -> str:
    return f" (process {pid})" if pid else ""


class Claim:
    """This wizard's hold on a draft (see ``claim``); released when the process ends."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self, remove: bool = False) -> None:
        if self.fd is None:
            return
        if remove:
            try:
                _owner_file(self.path).unlink()
            except OSError:
                pass
        os.close(self.fd)
        self.fd = None


def _owner_file(draft: Path) -> Path:
    return draft.with_name(draft.name + ".owner")


def _try_lock(draft: Path, create: bool):
    """(fd holding the owner lock, None) or (None, pid of the live owner)."""
    import fcntl
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(_owner_file(draft), flags, 0o600)
    except FileNotFoundError:
        return None, None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        return None, int(text) if text.isdigit() else 0
    return fd, None


def claim(config_path) -> Claim:
    """Own the draft for config_path while this wizard runs; DraftBusy when
    another live wizard owns it."""
    path = draft_path(config_path)
    try:
        import fcntl  # noqa: F401
    except ImportError:    # Windows: no flock, no ownership
        return Claim(path, None)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for _ in range(3):
        fd, pid = _try_lock(path, create=True)
        if fd is None:
            raise DraftBusy(pid)
        try:
            if os.fstat(fd).st_ino == os.stat(_owner_file(path)).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)        # its owner removed that file meanwhile: take the new one
    else:
        raise DraftBusy(0)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode("ascii"))
    return Claim(path, fd)


def owner_of(config_path, mine: Claim | None = None) -> int | None:
    """The pid of another live wizard owning the draft for config_path (0 when
    it is not known yet), or None when nobody else does."""
    if mine is not None and mine.fd is not None:
        return None
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return None
    fd, pid = _try_lock(draft_path(config_path), create=False)
    if fd is not None:
        os.close(fd)
    return pid


def _secret_slots(cfg) -> list[tuple[str, object, str]]:
    """(dotted name, object, attribute) of every secret the config can hold."""
    slots = [("auth.client_secret", cfg.auth, "client_secret"), ("auth.password", cfg.auth, "password")]
    slots += [(f"incoming.accounts[{n}].password", a, "password") for n, a in enumerate(cfg.incoming.accounts)]
    slots += [(f"users[{n}].password", u, "password") for n, u in enumerate(cfg.users)]
    return slots


def _is_reference(value: str) -> bool:
    return value.startswith(("env:", "file:"))


def save_draft(config_path, cfg, stage: str, *, keep_secrets: bool,
               raw: dict[str, str] | None = None, missing_secrets: list[str] | None = None,
               claim: Claim | None = None) -> Path:
    """Keep cfg (as typed so far) and the stage for config_path. Returns the draft file.

    Without keep_secrets every literal secret is left out and listed in
    missing_secrets. ``raw`` may carry input texts that do not fit the config
    yet (e.g. a half-typed port); keys containing 'secret' or 'password' are
    dropped unless keep_secrets. ``missing_secrets`` adds fields already known
    to be missing (e.g. from a draft that was resumed and not yet completed).
    ``claim``: this wizard's (see ``claim()``); without it, DraftBusy is raised
    when another live wizard owns the draft."""
    import tomlkit
    from wizard.config.schema import copy_config, to_dict
    from wizard.config.files import write_private

    snapshot = copy_config(cfg)
    missing: list[str] = list(missing_secrets or [])
    for name, obj, attr in _secret_slots(snapshot):
        value = getattr(obj, attr) or ""
        if value and not keep_secrets and not _is_reference(value):
            setattr(obj, attr, "")
            missing.append(name)
        if keep_secrets and value and name in missing:
            missing.remove(name)
    kept_raw = {str(k): str(v) for k, v in (raw or {}).items()
                if keep_secrets or not any(h in str(k).lower() for h in SECRET_HINTS)}
    data = to_dict(snapshot)
    data["draft"] = {
        "format": DRAFT_FORMAT,
        "config_path": str(_key(config_path)),
        "stage": str(stage),
        "saved_at": datetime.now(timezone.utc).replace(microsecond=0),
        "secrets_kept": bool(keep_secrets),
        "missing_secrets": sorted(set(missing)),
        "raw": kept_raw,
    }
    header = ("mailwizard draft: values typed in the wizard, kept to resume after a dropped session.\n"
              "Removed when the config is saved. " +
              ("Holds secrets (the user agreed)." if keep_secrets else "Holds no secret."))
    doc = tomlkit.document()
    for line in header.splitlines():
        doc.add(tomlkit.comment(line))
    for key, value in data.items():
        doc[key] = value
    path = draft_path(config_path)
    busy = owner_of(config_path, claim)
    if busy is not None:
        raise DraftBusy(busy)
    write_private(path, tomlkit.dumps(doc), lock=True)
    return path


def load_draft(config_path) -> Draft | None:
    """The draft for config_path, or None when there is none or it cannot be
    read (damaged, foreign, another format). Never raises for a bad file."""
    path = draft_path(config_path)
    try:
        draft = _read(path, expect=_key(config_path))
    except Exception:   # a damaged draft must never stop the wizard
        return None
    if draft is not None:
        try:
            draft.owner = owner_of(config_path)
        except OSError:
            pass
    return draft


def read_draft_file(path) -> Draft | None:
    """A draft file as found in drafts_dir() (for `mailwizard list`); None when unreadable."""
    try:
        return _read(Path(path), expect=None)
    except Exception:
        return None


def _read(path: Path, expect: Path | None) -> Draft | None:
    if not path.is_file():   # the usual case at start
        return None
    from wizard.config.schema import from_dict
    from wizard.config.files import standard_toml

    data = standard_toml().loads(path.read_text(encoding="utf-8"))
    meta = data.pop("draft")
    if meta.get("format") != DRAFT_FORMAT:
        return None
    config_path = Path(meta["config_path"])
    if expect is not None and config_path != expect:
        return None
    saved_at = meta["saved_at"]
    if not isinstance(saved_at, datetime):
        return None
    if saved_at.tzinfo is None:
        saved_at = saved_at.replace(tzinfo=timezone.utc)
    cfg, _problems = from_dict(data)   # lenient: a draft may be incomplete
    missing = [str(m) for m in meta.get("missing_secrets", [])]
    raw = {str(k): str(v) for k, v in dict(meta.get("raw", {})).items()}
    return Draft(config_path=config_path, cfg=cfg, stage=str(meta["stage"]), saved_at=saved_at,
                 secrets_kept=bool(meta.get("secrets_kept", False)), missing_secrets=missing,
                 raw=raw, path=path)


def discard_draft(config_path, claim: Claim | None = None) -> bool:
    """Remove the draft for config_path (after the config is saved, or when the
    user starts over). Returns True when there was one. A draft another live
    wizard owns is left alone (False); ``claim``: this wizard's, released."""
    if owner_of(config_path, claim) is not None:
        return False
    try:
        draft_path(config_path).unlink()
        return True
    except FileNotFoundError:
        return False
    finally:
        if claim is not None:
            claim.release(remove=True)


def all_drafts() -> list[Draft]:
    """Every readable draft (for `mailwizard list`), oldest first."""
    folder = drafts_dir()
    if not folder.is_dir():
        return []
    found = [d for d in (read_draft_file(p) for p in folder.glob("*.toml")) if d is not None]
    return sorted(found, key=lambda d: (d.saved_at, str(d.config_path)))
