"""Microsoft cloud endpoints (from shared/docs/microsoft-365.md, 'Endpoints by cloud')."""

from __future__ import annotations

from dataclasses import dataclass

# Microsoft Graph Command Line Tools: Microsoft's own public client in every tenant, the app
# `register` and `doctor` sign an admin in with unless --admin-client-id names the organisation's.
GRAPH_CLI_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"


@dataclass(frozen=True)
class Cloud:
    name: str
    label: str
    authority: str          # identity platform host URL, no tenant
    exchange_host: str      # EWS / IMAP host; also the Exchange resource
    graph_url: str
    smtp_host: str

    @property
    def exchange_resource(self) -> str:
        return f"https://{self.exchange_host}"

    @property
    def imap_host(self) -> str:
        """IMAP (993, implicit TLS) is served by the Exchange host in every cloud."""
        return self.exchange_host


SMTP_PORT = 587     # SMTP AUTH client submission, STARTTLS
IMAP_PORT = 993     # IMAP over implicit TLS


@dataclass(frozen=True)
class Resolved:
    """A config's endpoints: the cloud's table, with [endpoints] overrides applied."""
    cloud: str
    authority: str          # identity platform host URL, no tenant, no trailing slash
    exchange_host: str
    exchange_resource: str
    graph_url: str
    smtp_host: str
    imap_host: str


def resolve(cfg) -> Resolved:
    """The endpoints a config talks to: ``cfg.microsoft.cloud`` picks the row of
    ``CLOUDS``; ``[endpoints] authority`` / ``graph_url`` override it."""
    c = cfg.cloud
    return Resolved(cloud=c.name, authority=cfg.authority_host,
                    exchange_host=c.exchange_host, exchange_resource=c.exchange_resource,
                    graph_url=(cfg.endpoints.graph_url or c.graph_url).rstrip("/"),
                    smtp_host=c.smtp_host, imap_host=c.imap_host)


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("global", "Global (and GCC)", "https://login.microsoftonline.com",
                    "outlook.office365.com", "https://graph.microsoft.com", "smtp.office365.com"),
    "usgov": Cloud("usgov", "US Government GCC High", "https://login.microsoftonline.us",
                   "outlook.office365.us", "https://graph.microsoft.us", "smtp.office365.us"),
    "usgov-dod": Cloud("usgov-dod", "US Government DoD", "https://login.microsoftonline.us",
                       "webmail.apps.mil", "https://dod-graph.microsoft.us", "webmail.apps.mil"),
    "china": Cloud("china", "China (21Vianet)", "https://login.chinacloudapi.cn",
                   "partner.outlook.cn", "https://microsoftgraph.chinacloudapi.cn", "partner.outlook.cn"),
}


def default_host(cloud: Cloud, protocol: str) -> str:
    """The mail server a protocol uses in a cloud (EWS and Graph: the Exchange host)."""
    return {"smtp": cloud.smtp_host, "imap": cloud.imap_host}.get(protocol, cloud.exchange_host)


def switch_cloud(cfg, name: str) -> list[str]:
    """Choose the Microsoft cloud ``name`` for a config: ``microsoft.cloud`` (and so
    the identity platform, the Exchange resource and Graph, unless [endpoints]
    overrides them), and every mail server that was the old cloud's default
    moves to the new cloud's. A server of one's own (or the sandbox) stays.
    Returns the keys of the servers that moved ("outgoing.server", ...)."""
    if name not in CLOUDS:
        raise ValueError(f"unknown cloud '{name}'; expected one of: {', '.join(CLOUDS)}")
    old, new = cfg.cloud, CLOUDS[name]
    cfg.microsoft.cloud = name
    moved = []
    for key, side in (("outgoing.server", cfg.outgoing), ("incoming.server", cfg.incoming)):
        if side.server and side.server.lower() == default_host(old, side.protocol) and old != new:
            side.server = default_host(new, side.protocol)
            moved.append(key)
    return moved
