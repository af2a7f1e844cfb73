"""The network steps of the connection test: DNS, TCP, TLS, each bounded.

Standard library only (requests is imported only when a proxy is in the way).
When HTTPS_PROXY applies to a host (and NO_PROXY does not exempt it), DNS and
TCP are checked against the proxy, and TLS through it with a real request.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import urllib.request
from datetime import datetime, timezone
from urllib.parse import urlsplit

from .catalogue import Diagnosis, lookup
from .diagnose import diagnose_network


def trust_path(cfg) -> str:
    """The CA bundle file to verify against: config, env, else certifi. Never None."""
    path = cfg.ca_bundle if cfg is not None else None
    if path:
        return os.path.expanduser(path)
    import certifi
    return certifi.where()


def targets(cfg, *, ews: bool = True) -> list[tuple[str, str, int]]:
    """(label, host, port) to check: the login host, and the EWS host when used."""
    parts = urlsplit(cfg.authority_host)
    out = [("login", (parts.hostname or "").lower(), parts.port or 443)]
    if ews:
        out.append(("ews", cfg.outgoing.server.lower(), int(cfg.outgoing.port)))
    seen, unique = set(), []
    for label, host, port in out:
        if (host, port) not in seen:
            seen.add((host, port))
            unique.append((label, host, port))
    return unique


def proxy_for(host: str) -> tuple[str, int] | None:
    """The (host, port) of the HTTPS proxy used for ``host``, or None."""
    proxies = urllib.request.getproxies()
    url = proxies.get("https") or proxies.get("all")
    if not url or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(url if "://" in url else "http://" + url)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 8080)


def resolve(cfg, host: str, port: int, timeout: float) -> tuple[list[str], str | None]:
    """The addresses of host (or of its proxy), and the proxy name if any. Bounded by timeout."""
    proxy = proxy_for(host)
    name, p = proxy or (host, port)
    box: dict = {}

    def work():
        try:
            box["infos"] = socket.getaddrinfo(name, p, type=socket.SOCK_STREAM)
        except BaseException as exc:   # handed to the caller
            box["error"] = exc
    t = threading.Thread(target=work, daemon=True, name="mailwizard-dns")
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise socket.gaierror(socket.EAI_AGAIN, f"DNS lookup of {name} took longer than {timeout:g} s")
    if "error" in box:
        raise box["error"]
    addrs = list(dict.fromkeys(info[4][0] for info in box["infos"]))
    return addrs, (f"{proxy[0]}:{proxy[1]}" if proxy else None)


def connect(cfg, host: str, port: int, timeout: float) -> str | None:
    """Open and close a TCP connection (to the proxy if one is used). Returns the proxy or None."""
    proxy = proxy_for(host)
    with socket.create_connection(proxy or (host, port), timeout=timeout):
        pass
    return f"{proxy[0]}:{proxy[1]}" if proxy else None


def handshake(cfg, host: str, port: int, timeout) -> dict:
    """A TLS handshake that verifies the certificate chain and name against our CA bundle."""
    connect_t, read_t = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if proxy_for(host):
        from .http import make_session
        with make_session(cfg, timeout=(connect_t, read_t)) as session:
            session.get(f"https://{host}:{port}/", allow_redirects=False)
        return {"version": "TLS (through the proxy)"}
    ctx = ssl.create_default_context(cafile=trust_path(cfg))
    with socket.create_connection((host, port), timeout=connect_t) as raw:
        raw.settimeout(read_t)
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            cert = tls.getpeercert() or {}
            info = {"version": tls.version()}
    if cert.get("notAfter"):
        when = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), timezone.utc)
        info["not_after"] = when.date().isoformat()
    issuer = dict(x[0] for x in cert.get("issuer", ()) if x)
    if issuer.get("commonName"):
        info["issuer"] = issuer["commonName"]
    return info


def diagnose(exc, cfg, host: str, port: int, default: str, label: str = "") -> Diagnosis:
    d = diagnose_network(exc, cfg=cfg, host=host, port=port)
    if d is None:
        d = lookup(default, cfg=cfg, host=host, port=port, service_message=f"{type(exc).__name__}: {exc}")
    if label == "login" and d.screen == "mail":
        d.screen = "target"      # the login host comes from the cloud / endpoints settings
    return d
