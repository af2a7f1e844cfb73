"""The mail servers a config uses: protocol, host and port for sending and for
reading, as the connection test and the runtime both reach them."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_host(url: str, default_port: int = 443) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port or default_port


def mail_endpoint(cfg, direction: str) -> tuple[str, str, int]:
    """(protocol, host, port) of the mail server for ``direction`` ("out" or
    "in"). SMTP is STARTTLS on 587 (443 in the form means "not set"), IMAP
    implicit TLS on 993, Graph the cloud's Graph host (or ``[endpoints]
    graph_url``); incoming EWS without its own server uses the outgoing EWS
    server, else the cloud's Exchange host. The check and the runtime both
    use this, so they talk to the same servers."""
    from wizard.config.clouds import IMAP_PORT, SMTP_PORT
    o, i = cfg.outgoing, cfg.incoming
    if direction == "out":
        if o.protocol == "graph":
            return ("graph", *url_host(cfg.endpoints.graph_url or cfg.cloud.graph_url))
        if o.protocol == "smtp":
            return ("smtp", (o.server or cfg.cloud.smtp_host).lower(),
                    int(o.port) if o.port and int(o.port) != 443 else SMTP_PORT)
        return (o.protocol, o.server.lower(), int(o.port))
    if i.protocol == "graph":
        return ("graph", *url_host(cfg.endpoints.graph_url or cfg.cloud.graph_url))
    if i.protocol == "imap":
        return ("imap", (i.server or cfg.cloud.imap_host).lower(), int(i.port or IMAP_PORT))
    if i.server:
        return (i.protocol, i.server.lower(), int(i.port or 443))
    if o.protocol == i.protocol:
        return (i.protocol, o.server.lower(), int(i.port or o.port))
    return (i.protocol, cfg.cloud.exchange_host.lower(), int(i.port or 443))


def mail_endpoints(cfg) -> list[tuple[str, str, str, int]]:
    """[(direction, protocol, host, port)] of the mail servers the config
    uses: outgoing, and incoming when there are incoming accounts."""
    out = [("out", *mail_endpoint(cfg, "out"))]
    if cfg.incoming.accounts:
        out.append(("in", *mail_endpoint(cfg, "in")))
    return out
