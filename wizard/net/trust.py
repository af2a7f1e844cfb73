"""Which CA bundle TLS is verified against (the config's, else certifi's).
At the bottom of ``net``: the HTTP session and the probes both use it."""

from __future__ import annotations

import os


def trust_path(cfg) -> str:
    """The CA bundle file to verify against: config, env, else certifi. Never None."""
    path = cfg.ca_bundle if cfg is not None else None
    if path:
        return os.path.expanduser(path)
    import certifi
    return certifi.where()
