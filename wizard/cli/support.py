"""The support bundle (`mailwizard report`) and the last check's record.

Nothing here may carry a secret, password or access token: the config is
masked and every text is scrubbed of the config's secrets before writing.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def state_dir() -> Path:
    from platformdirs import user_state_path
    return user_state_path("mailwizard", appauthor=False)


def last_check_path(config_path: str | None = None) -> Path:
    """The last check of any config (``last-check.json``), or of the config at ``config_path``."""
    if config_path is None:
        return state_dir() / "last-check.json"
    import hashlib
    key = hashlib.sha256(_absolute(config_path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return state_dir() / f"last-check-{key}.json"


def _absolute(config_path: str) -> str:
    import os
    return os.path.abspath(os.path.expanduser(str(config_path)))


def redact(text: str, secrets) -> str:
    from wizard.cli.output import scrub
    return JWT_RE.sub("<access token removed>", scrub(text, secrets))


def record_check(report_json: dict, config_path: str, secrets) -> None:
    """Keep the last check's step tree (scrubbed) for `mailwizard report`: the last of any
    config, and the last of this config (the report of a config shows only its own)."""
    from wizard.config.files import write_private
    data = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": _absolute(config_path), "report": report_json}
    text = redact(json.dumps(data, indent=2), secrets)
    for path in (last_check_path(), last_check_path(config_path)):
        try:
            write_private(path, text)
        except OSError:
            pass  # a read-only home must not break `check`


def last_check_of(config_path: str) -> str | None:
    """The recorded last check of the config at ``config_path`` (its JSON text), or None."""
    for path in (last_check_path(config_path), last_check_path()):   # the shared one: records of older versions
        try:
            text = path.read_text(encoding="utf-8")
            recorded = json.loads(text).get("config")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(recorded, str) and _absolute(recorded) == _absolute(config_path):
            return text
    return None


def masked_config_text(cfg) -> str:
    from wizard.config.schema import masked
    from wizard.config.files import render
    return render(masked(cfg))


def versions() -> dict:
    from importlib import metadata
    from wizard import __version__
    out = {"mailwizard": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("textual", "msal", "exchangelib", "tomlkit", "platformdirs", "requests", "cryptography"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def build_bundle(cfg, config_path: str, config_error: str | None = None) -> str:
    from wizard.config.schema import secrets_of
    lines = ["mailwizard support bundle", f"created: {datetime.now(timezone.utc).isoformat(timespec='seconds')}", ""]
    lines.append("== versions")
    lines += [f"{k}: {v}" for k, v in versions().items()]
    lines += ["", f"== config ({config_path}, secrets masked)"]
    if config_error:
        lines.append(f"config error: {config_error}")
    if cfg is not None:
        lines.append(masked_config_text(cfg))
    lines.append("== last check")
    last = last_check_of(config_path)
    if last is not None:
        lines.append(last)
    else:
        from shlex import quote
        lines.append(f"(no check of this config ({config_path}) recorded yet: run "
                     f"`mailwizard check --config {quote(config_path)}` first)")
    secrets = secrets_of(cfg) if cfg is not None else []
    return redact("\n".join(lines) + "\n", secrets)
