"""Each cloud resolves to its documented endpoints (shared/docs/microsoft-365.md,
'Endpoints by cloud'); [endpoints] still overrides."""

from __future__ import annotations

import pytest

from wizard.config import clouds
from wizard.config.schema import Config, validate

TABLE = {
    # cloud: (identity platform, Exchange host, Graph)
    "global": ("https://login.microsoftonline.com", "outlook.office365.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "outlook.office365.us", "https://graph.microsoft.us"),
    "usgov-dod": ("https://login.microsoftonline.us", "webmail.apps.mil", "https://dod-graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "partner.outlook.cn", "https://microsoftgraph.chinacloudapi.cn"),
}


def cfg_for(cloud: str) -> Config:
    cfg = Config()
    cfg.microsoft.cloud = cloud
    cfg.microsoft.tenant_id = "5f8d2c1a-7b3e-4a9d-8c6f-1e2d3b4a5c6d"
    return cfg


@pytest.mark.parametrize("cloud", list(TABLE))
def test_each_cloud_resolves_to_its_documented_endpoints(cloud):
    authority, exchange, graph = TABLE[cloud]
    cfg = cfg_for(cloud)
    assert cfg.cloud.name == cloud
    assert cfg.authority_host == authority
    assert cfg.authority_url == f"{authority}/5f8d2c1a-7b3e-4a9d-8c6f-1e2d3b4a5c6d"
    assert cfg.cloud.exchange_resource == f"https://{exchange}"
    assert cfg.cloud.imap_host == exchange
    e = clouds.resolve(cfg)
    assert (e.cloud, e.authority, e.exchange_host, e.graph_url) == (cloud, authority, exchange, graph)
    assert e.exchange_resource == f"https://{exchange}"
    assert e.imap_host == exchange
    assert not [p for p in validate(cfg, resolve=False) if p.field == "microsoft.cloud"]


def test_global_smtp_is_the_documented_submission_host_and_ports():
    e = clouds.resolve(cfg_for("global"))
    assert e.smtp_host == "smtp.office365.com"
    assert (clouds.SMTP_PORT, clouds.IMAP_PORT) == (587, 993)


@pytest.mark.parametrize("cloud", list(TABLE))
def test_endpoints_section_overrides_the_cloud(cloud):
    cfg = cfg_for(cloud)
    cfg.endpoints.authority = "https://127.0.0.1:8443/"
    cfg.endpoints.graph_url = "https://127.0.0.1:9443"
    e = clouds.resolve(cfg)
    assert cfg.authority_host == e.authority == "https://127.0.0.1:8443"
    assert e.graph_url == "https://127.0.0.1:9443"
    assert e.exchange_host == TABLE[cloud][1]      # not overridable: it is the server setting


def test_unknown_cloud_is_a_config_error_naming_the_choices():
    cfg = cfg_for("mars")
    problems = [p for p in validate(cfg, resolve=False) if p.field == "microsoft.cloud"]
    assert problems and "global, usgov, usgov-dod, china" in problems[0].message


@pytest.mark.parametrize("protocols, old, new, servers", [
    (("ews", "ews"), "global", "usgov", ("outlook.office365.us", "")),
    (("graph", "graph"), "global", "china", ("partner.outlook.cn", "")),
    (("smtp", "imap"), "usgov-dod", "global", ("smtp.office365.com", "outlook.office365.com")),
    (("smtp", "imap"), "global", "usgov-dod", ("webmail.apps.mil", "webmail.apps.mil")),
])
def test_switching_the_cloud_moves_its_default_servers(protocols, old, new, servers):
    cfg = cfg_for(old)
    cfg.outgoing.protocol, cfg.incoming.protocol = protocols
    cfg.outgoing.server = clouds.default_host(cfg.cloud, protocols[0])
    cfg.incoming.server = clouds.default_host(cfg.cloud, protocols[1]) if protocols[1] == "imap" else ""
    clouds.switch_cloud(cfg, new)
    assert cfg.microsoft.cloud == new and clouds.resolve(cfg).authority == clouds.CLOUDS[new].authority
    assert (cfg.outgoing.server, cfg.incoming.server) == servers


def test_switching_the_cloud_keeps_a_server_of_ones_own_and_the_overrides():
    cfg = cfg_for("global")
    cfg.outgoing.server = "mail.contoso.com"                  # Exchange Server on-premises
    cfg.endpoints.authority = "https://127.0.0.1:8443"        # the sandbox
    clouds.switch_cloud(cfg, "usgov")
    assert cfg.outgoing.server == "mail.contoso.com" and cfg.authority_host == "https://127.0.0.1:8443"
    with pytest.raises(ValueError, match="unknown cloud"):
        clouds.switch_cloud(cfg, "mars")
