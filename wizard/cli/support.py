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


def last_check_path() -> Path:
    return state_dir() / "last-check.json"


def redact(text: str, secrets) -> str:
    from wizard.cli.output import scrub
    return JWT_RE.sub("<access token removed>", scrub(text, secrets))


def record_check(report_json: dict, config_path: str, secrets) -> None:
    """Keep the last check's step tree (scrubbed) for `mailwizard report`."""
    from wizard.config.files import write_private
    data = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": config_path, "report": report_json}
    try:
        write_private(last_check_path(), redact(json.dumps(data, indent=2), secrets))
    except OSError:
        pass  # a read-only home must not break `check`


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
    p = last_check_path()
    if p.exists():
        lines.append(p.read_text(encoding="utf-8"))
    else:
        lines.append("(no check recorded yet: run `mailwizard check` first)")
    secrets = secrets_of(cfg) if cfg is not None else []
    return redact("\n".join(lines) + "\n", secrets)
