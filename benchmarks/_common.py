"""Shared helpers for the check benchmarks: a sandbox config on disk and a
`mailwizard` subprocess with an isolated environment (no proxy, no machine
CA variables, its own state directory)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLEAR = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
         "no_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "MAILWIZARD_TIMEOUT",
         "MAILWIZARD_MAX_WAIT", "MAILWIZARD_CONFIG", "MAILWIZARD_PROFILE",
         # This machine sets it; a user's copy has its bytecode (pip compiles it at
         # install, an editable install writes it on the first run), so without it
         # the wizard's own modules would be compiled from source on every start.
         "PYTHONDONTWRITEBYTECODE")


def env(tmp: Path) -> dict:
    e = {k: v for k, v in os.environ.items() if k not in CLEAR}
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        (tmp / name.lower()).mkdir(exist_ok=True)
        e[name] = str(tmp / name.lower())
    e["NO_COLOR"] = "1"
    return e


def write_config(sb, tmp: Path, incoming: bool = False, name: str = "bench.toml") -> Path:
    from wizard.config import files as config_io
    cfg = sb.config(flow="client_secret")
    if not incoming:
        cfg.incoming.accounts = []
    return config_io.save(cfg, tmp / name)


def mailwizard(args: list[str], tmp: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "wizard", *args], capture_output=True, text=True,
                          env=env(tmp), cwd=str(ROOT))
    return time.perf_counter() - start, proc


def timed(cmd: list[str], tmp: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, env=env(tmp), cwd=str(ROOT), check=True)
    return time.perf_counter() - start


def median(values) -> float:
    return statistics.median(values)


def table(rows: list[tuple], headers: tuple) -> str:
    cells = [tuple(str(c) for c in r) for r in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    return "\n".join(out + [line(r) for r in cells[1:]])
