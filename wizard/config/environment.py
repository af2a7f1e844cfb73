"""The environment's part of a setup: what a config takes from environment
variables when it does not say itself, checked as the config's own values are.

Today: the CA bundle. Without ``endpoints.ca_bundle`` TLS is verified against the
file REQUESTS_CA_BUNDLE (else SSL_CERT_FILE) names (``Config.ca_bundle``); a
variable naming a file that is not there would otherwise fail every connection
as a vague TLS error.
"""

from __future__ import annotations

import os
from pathlib import Path

from wizard.config.schema import CA_BUNDLE_VARIABLES


def ca_bundle_variable(cfg) -> str | None:
    """The environment variable the CA bundle comes from, or None (the config's own, or certifi's)."""
    if cfg.endpoints.ca_bundle:
        return None
    return next((name for name in CA_BUNDLE_VARIABLES if os.environ.get(name)), None)


def problems(cfg) -> list:
    """Problems (as ``validate`` returns them) with the environment this config relies on,
    each named by its variable."""
    from wizard.config.schema import Problem
    name = ca_bundle_variable(cfg)
    if name is None:
        return []
    value = os.environ[name]
    path = Path(value).expanduser()
    if path.is_file():
        return []
    what = "is a folder, not a file" if path.is_dir() else "does not exist"
    return [Problem(name, f"the environment variable names the CA bundle file {value}, which {what} (the "
                          "config sets no endpoints.ca_bundle, so TLS is verified against it)")]


def fix(name: str) -> str:
    """What to do about the environment variable ``name`` a problem names."""
    return (f"Point {name} at a PEM file with the CA certificates to trust, unset {name} (then the usual public "
            "authorities are trusted), or set endpoints.ca_bundle in the config.")
