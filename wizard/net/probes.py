"""The network steps of the connection test: DNS, TCP, TLS, each bounded.

Standard library, and requests when a proxy is set: whether HTTPS_PROXY applies
to a host (NO_PROXY with names, host:port and CIDR ranges) is decided by
requests' own rule, the one it applies for MSAL, EWS and Graph. Then DNS is checked for the proxy's
name, TCP by opening a CONNECT tunnel through the proxy to the host (so a
proxy that refuses the host or wants a sign-in fails here, with its answer),
and TLS by a handshake with the host inside such a tunnel.

The hosts are the ones the config really uses (``targets``): the login host,
and per protocol the EWS host, the Graph host, the SMTP host (port 587, TLS
after STARTTLS) and the IMAP host (port 993, implicit TLS). SMTP and IMAP are
checked without a proxy, as smtplib / imaplib reach them in the runtime.
"""

from __future__ import annotations

import socket
import ssl
import threading
import urllib.request
from datetime import datetime, timezone
from urllib.parse import urlsplit

from wizard.diagnosis.catalogue import Diagnosis, lookup
from wizard.diagnosis.classify import diagnose_network
from wizard.config.endpoints import mail_endpoints, url_host
from wizard.net.trust import trust_path


# The runtime reaches these over smtplib / imaplib, which never use a proxy:
# the test connects to them directly too, whatever HTTPS_PROXY says.
DIRECT = ("smtp", "imap")


def targets(cfg) -> list[tuple[str, str, int]]:
    """(label, host, port) to check: the login host, then each mail server the
    config uses, labelled by protocol ("ews", "graph", "smtp", "imap"); each
    host and port once."""
    out = [("login", *url_host(cfg.authority_host))]
    out += [(protocol, host, port) for _, protocol, host, port in mail_endpoints(cfg)]
    seen, unique = set(), []
    for label, host, port in out:
        if host and (host, port) not in seen:
            seen.add((host, port))
            unique.append((label, host, port))
    return unique


def _bypassed(host: str, port: int | None) -> bool:
    """NO_PROXY exempts https://host:port: requests' own rule (names, host:port, CIDR), as the runtime."""
    from requests.utils import should_bypass_proxies
    name = f"[{host}]" if ":" in host else host
    return should_bypass_proxies(f"https://{name}" + (f":{port}" if port else ""), no_proxy=None)


def _proxy_parts(host: str, port: int | None = None):
    """urlsplit() of the HTTPS proxy URL used for ``host`` (on ``port``), or None."""
    proxies = urllib.request.getproxies()
    url = proxies.get("https") or proxies.get("all")
    if not url or _bypassed(host, port):
        return None
    parts = urlsplit(url if "://" in url else "http://" + url)
    try:
        parts.port
    except ValueError:
        return None
    return parts if parts.hostname else None


def proxy_variable() -> str:
    """The environment variable that names the HTTPS proxy (lower case wins, as in urllib and requests)."""
    import os
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        if os.environ.get(name):
            return name
    return "HTTPS_PROXY"


def proxy_for(host: str, port: int | None = None) -> tuple[str, int] | None:
    """The (host, port) of the HTTPS proxy used for ``host`` (on ``port``), or None."""
    parts = _proxy_parts(host, port)
    if parts is None:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)   # as requests/urllib3


def proxy_secrets() -> list[str]:
    """Passwords in the proxy URLs of the environment, to keep them out of any output."""
    out = []
    for url in urllib.request.getproxies().values():
        try:
            parts = urlsplit(url if "://" in url else "http://" + url)
        except ValueError:
            continue
        if parts.password:
            from urllib.parse import unquote
            out += [parts.password, unquote(parts.password)]
    return [x for x in out if len(x) >= 4]


class ProxyRefused(OSError):
    """The proxy answered the CONNECT with something other than 200."""

    def __init__(self, status: int, reason: str, proxy: str):
        self.status, self.reason, self.proxy = status, reason, proxy
        super().__init__(f"proxy {proxy} answered CONNECT with {status} {reason}".strip())


def tunnel(host: str, port: int, timeout) -> socket.socket | None:
    """A socket tunnelled to host:port through its HTTP proxy (CONNECT), or
    None when no proxy applies (or it is an https:// proxy, which the TLS step
    checks with a real request). Raises OSError / ProxyRefused."""
    connect_t, read_t = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    parts = _proxy_parts(host, port)
    if parts is None or parts.scheme == "https":
        return None
    proxy = (parts.hostname, parts.port or 80)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if parts.username:
        import base64
        from urllib.parse import unquote
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(cred).decode("ascii"))
    sock = socket.create_connection(proxy, timeout=connect_t)
    try:
        sock.settimeout(read_t)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)      # byte by byte: nothing after the header may be consumed
            if not chunk:
                raise ConnectionResetError(f"proxy {proxy[0]}:{proxy[1]} closed the connection during CONNECT")
            head += chunk
            if len(head) > 16384:
                raise ProxyRefused(0, "answer too long", f"{proxy[0]}:{proxy[1]}")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        bits = status_line.split(" ", 2)
        code = int(bits[1]) if len(bits) > 1 and bits[1].isdigit() else 0
        if code != 200:
            raise ProxyRefused(code, bits[2] if len(bits) > 2 else status_line, f"{proxy[0]}:{proxy[1]}")
        return sock
    except BaseException:
        sock.close()
        raise


def resolve(cfg, host: str, port: int, timeout: float, *, direct: bool = False) -> tuple[list[str], str | None]:
    """The addresses of host (or of its proxy), and the proxy name if any. Bounded by timeout.
    ``direct``: the host is reached without a proxy (SMTP, IMAP)."""
    proxy = None if direct else proxy_for(host, port)
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


def connect(cfg, host: str, port: int, timeout, *, direct: bool = False) -> str | None:
    """Open and close a TCP connection to host:port -- through a CONNECT tunnel
    when a proxy applies (never when ``direct``). Returns the proxy ("host:port") or None."""
    proxy = None if direct else proxy_for(host, port)
    if proxy is None:
        connect_t = timeout[0] if isinstance(timeout, tuple) else timeout
        with socket.create_connection((host, port), timeout=connect_t):
            pass
        return None
    sock = tunnel(host, port, timeout)
    if sock is None:            # https:// proxy: reach it here, the TLS step goes through it
        connect_t = timeout[0] if isinstance(timeout, tuple) else timeout
        sock = socket.create_connection(proxy, timeout=connect_t)
    sock.close()
    return f"{proxy[0]}:{proxy[1]}"


class NoStartTls(OSError):
    """The SMTP server did not offer STARTTLS."""


def _starttls(cfg, host: str, port: int, connect_t: float, read_t: float) -> dict:
    """SMTP submission: greeting, EHLO, STARTTLS, the handshake verified against
    our CA bundle, QUIT. Direct, as smtplib in the runtime connects."""
    import smtplib
    ctx = ssl.create_default_context(cafile=trust_path(cfg))
    smtp = smtplib.SMTP(host, port, timeout=connect_t)     # connects and reads the greeting
    try:
        smtp.sock.settimeout(read_t)
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise NoStartTls(f"{host}:{port} does not offer STARTTLS after EHLO")
        smtp.starttls(context=ctx)
        cert = smtp.sock.getpeercert() or {}
        info = {"version": smtp.sock.version(), "starttls": True}
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
    finally:
        smtp.close()
    return _cert_info(info, cert)


def _cert_info(info: dict, cert: dict) -> dict:
    if cert.get("notAfter"):
        when = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), timezone.utc)
        info["not_after"] = when.date().isoformat()
    issuer = dict(x[0] for x in cert.get("issuer", ()) if x)
    if issuer.get("commonName"):
        info["issuer"] = issuer["commonName"]
    return info


def handshake(cfg, host: str, port: int, timeout, *, starttls: bool = False, direct: bool = False) -> dict:
    """A TLS handshake that verifies the certificate chain and name against our
    CA bundle: right away (HTTPS, IMAP on 993), or after SMTP's STARTTLS
    (``starttls``). ``direct``: no proxy (SMTP, IMAP)."""
    connect_t, read_t = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if starttls:
        return _starttls(cfg, host, port, connect_t, read_t)
    proxy = None if direct else proxy_for(host, port)
    raw = tunnel(host, port, (connect_t, read_t)) if proxy else None
    if proxy and raw is None:   # https:// proxy: let requests do TLS-in-TLS with a real request
        from wizard.net.session import make_session
        with make_session(cfg, timeout=(connect_t, read_t)) as session:
            session.get(f"https://{host}:{port}/", allow_redirects=False)
        return {"version": "TLS (through the proxy)", "proxy": f"{proxy[0]}:{proxy[1]}"}
    ctx = ssl.create_default_context(cafile=trust_path(cfg))
    if raw is None:
        raw = socket.create_connection((host, port), timeout=connect_t)
    with raw:
        raw.settimeout(read_t)
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            cert = tls.getpeercert() or {}
            info = _cert_info({"version": tls.version()}, cert)
    if proxy:
        info["proxy"] = f"{proxy[0]}:{proxy[1]}"
    return info


def diagnose(exc, cfg, host: str, port: int, default: str, label: str = "") -> Diagnosis:
    d = diagnose_network(exc, cfg=cfg, host=host, port=port)
    if d is None:
        d = lookup(default, cfg=cfg, host=host, port=port, service_message=f"{type(exc).__name__}: {exc}")
    if label in ("login", "graph") and d.screen == "mail":
        d.screen = "target"      # the login and Graph hosts come from the cloud / endpoints settings
    return d
