"""Microsoft cloud endpoints (from shared/docs/microsoft-365.md, 'Endpoints by cloud')."""

from __future__ import annotations

from dataclasses import dataclass


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
