"""Tenant discovery from the public openid-configuration, against the sandbox."""

from __future__ import annotations

import json

import pytest

from wizard.cli.main import main
from wizard.config.files import save
from wizard.identity.discovery import (DiscoveryError, TenantNotFound, candidate_authorities, cloud_of,
                              discover_tenant)
from wizard.sandbox import sample


def test_known_domain_gives_the_guid_cloud_and_region(sandbox):
    info = discover_tenant(sample.DOMAIN, authority=sandbox.base_url, ca_bundle=sandbox.ca_path)
    assert info.tenant_id == sample.TENANT_ID
    assert info.cloud == "global"
    assert info.region_scope == "EU"
    assert info.issuer == f"{sandbox.base_url}/{sample.TENANT_ID}/v2.0"
    assert [r.path for r in sandbox.requests] == [f"/{sample.DOMAIN}/v2.0/.well-known/openid-configuration"]


def test_tenant_id_in_any_case_and_grouping(sandbox):
    info = discover_tenant("{" + sample.TENANT_ID.upper() + "}", authority=sandbox.base_url,
                           ca_bundle=sandbox.ca_path)
    assert info.tenant_id == sample.TENANT_ID


def test_unknown_domain_is_aadsts90002_and_said_plainly(sandbox):
    with pytest.raises(TenantNotFound) as e:
        discover_tenant("no-such-tenant.example.org", authority=sandbox.base_url, ca_bundle=sandbox.ca_path)
    assert e.value.code == "AADSTS90002" and e.value.unknown_domain
    assert "domain no-such-tenant.example.org is unknown" in e.value.message


def test_common_is_refused_before_asking(sandbox):
    with pytest.raises(DiscoveryError) as e:
        discover_tenant("common", authority=sandbox.base_url, ca_bundle=sandbox.ca_path)
    assert e.value.code == "invalid"
    assert sandbox.requests == []


def test_untrusted_certificate_is_a_network_error_not_a_crash(sandbox):
    with pytest.raises(DiscoveryError) as e:
        discover_tenant(sample.DOMAIN, authority=sandbox.base_url)     # certifi does not trust the sandbox CA
    assert e.value.code == "network"


def test_untrusted_certificate_names_the_ca_bundle_which_the_environment_can_give(sandbox, monkeypatch):
    with pytest.raises(DiscoveryError) as e:
        discover_tenant(sample.DOMAIN, authority=sandbox.base_url)
    assert e.value.diagnosis == "tls.untrusted" and "not trusted" in e.value.message
    assert "endpoints.ca_bundle" in e.value.fix and "REQUESTS_CA_BUNDLE" in e.value.fix
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_path)          # as the fix says, without a config
    assert discover_tenant(sample.DOMAIN, authority=sandbox.base_url).tenant_id == sample.TENANT_ID


class _Resp:
    def __init__(self, status, data):
        self.status_code, self._data = status, data

    def json(self):
        return self._data


class FakeSession:
    """Answers per authority host, records the URLs asked (no network)."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def get(self, url, timeout=None):
        self.asked.append(url)
        for prefix, (status, data) in self.answers.items():
            if url.startswith(prefix):
                return _Resp(status, data)
        return _Resp(400, {"error_codes": [90002]})


GOV_TID = "0b9c3a4d-1e2f-4a5b-8c7d-6e5f4a3b2c1d"


def test_without_a_cloud_the_clouds_are_tried_in_turn():
    session = FakeSession({"https://login.chinacloudapi.cn/": (200, {
        "issuer": f"https://login.chinacloudapi.cn/{GOV_TID}/v2.0", "tenant_region_scope": "AS",
        "cloud_instance_name": "chinacloudapi.cn"})})
    info = discover_tenant("contoso.cn", session=session)
    assert info.cloud == "china" and info.tenant_id == GOV_TID
    hosts = [u.split("/")[2] for u in session.asked]
    assert hosts == ["login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"]


def test_cloud_comes_from_the_answer_not_from_who_answered():
    session = FakeSession({"https://login.microsoftonline.com/": (200, {
        "issuer": f"https://login.microsoftonline.us/{GOV_TID}/v2.0", "tenant_region_scope": "USGov",
        "cloud_instance_name": "microsoftonline.us"})})
    info = discover_tenant("agency.gov", session=session)
    assert info.cloud == "usgov" and len(session.asked) == 1


def test_unknown_everywhere_names_every_cloud_tried():
    session = FakeSession({})
    with pytest.raises(TenantNotFound) as e:
        discover_tenant("nobody.example", session=session)
    assert len(e.value.tried) == 3 and "any Microsoft cloud" in e.value.message


def test_candidates_and_cloud_mapping():
    assert candidate_authorities("usgov-dod") == ["https://login.microsoftonline.us"]
    assert candidate_authorities(authority="https://127.0.0.1:1/") == ["https://127.0.0.1:1"]
    assert cloud_of({"cloud_instance_name": "microsoftonline.us", "tenant_region_sub_scope": "DOD"}) == "usgov-dod"
    assert cloud_of({}, "https://sts.windows.net/x/") == "global"
    with pytest.raises(DiscoveryError):
        candidate_authorities("mars")


def test_cli_discover_known_unknown_and_usage(sandbox, tmp_path, capsys):
    path = save(sandbox.config(), tmp_path / "mw.toml")
    assert main(["discover", sample.DOMAIN, "--config", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["tenant_id"] == sample.TENANT_ID and data["cloud"] == "global"
    assert main(["discover", sample.DOMAIN, "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert sample.TENANT_ID in out and "5f8d 2c1a" in out
    assert main(["discover", "unknown.example.org", "--config", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["code"] == "AADSTS90002"
    assert main(["discover", "not a domain", "--config", str(path)]) == 2
    assert main(["discover", sample.DOMAIN, "--config", str(tmp_path / "missing.toml")]) == 2


# -- no network: "could not be reached", with the fix, never "not found" ----------------------

UNRESOLVABLE = "login.no-such-host.invalid"


@pytest.fixture
def offline_clouds(monkeypatch):
    """Every cloud's identity platform unreachable, on 127.0.0.1 only: nothing listens on the
    global and China ones, and the US Government one has a name that does not resolve."""
    import dataclasses
    import socket

    from interop_servers import closed_port
    from wizard.config.clouds import CLOUDS
    from wizard.identity import discovery
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == UNRESOLVABLE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    authorities = {"global": f"https://127.0.0.1:{closed_port()}", "usgov": f"https://{UNRESOLVABLE}",
                   "china": f"https://127.0.0.1:{closed_port()}"}
    clouds = {k: dataclasses.replace(CLOUDS[k], authority=a) for k, a in authorities.items()}
    monkeypatch.setattr(discovery, "CLOUDS", clouds)
    return list(authorities.values())


def test_unreachable_clouds_say_so_with_the_fix_and_every_one_tried(offline_clouds):
    with pytest.raises(DiscoveryError) as e:
        discover_tenant("contoso.com")
    err = e.value
    assert not isinstance(err, TenantNotFound) and not err.unknown_domain
    assert err.code == "network" and err.tried == offline_clouds
    assert "could not be reached" in err.message and "3 clouds tried" in err.message
    assert "not found" not in err.message.lower()
    assert err.diagnosis == "net.refused" and "refused" in err.message          # the first one tried
    assert err.details["diagnoses"][offline_clouds[1]] == "net.dns"
    assert "HTTPS_PROXY" in err.fix and "firewall" in err.fix
    for raw in ("HTTPSConnectionPool", "Max retries", "Caused by", "ConnectionError"):
        assert raw not in err.message + err.fix


def test_not_found_in_one_cloud_and_unreachable_in_another_is_still_not_found(sandbox, monkeypatch):
    import dataclasses

    from interop_servers import closed_port
    from wizard.config.clouds import CLOUDS
    from wizard.identity import discovery
    dead = f"https://127.0.0.1:{closed_port()}"
    monkeypatch.setattr(discovery, "CLOUDS", {
        "global": dataclasses.replace(CLOUDS["global"], authority=sandbox.base_url),
        "china": dataclasses.replace(CLOUDS["china"], authority=dead)})
    with pytest.raises(TenantNotFound) as e:
        discover_tenant("no-such-tenant.example.org", ca_bundle=sandbox.ca_path)
    assert e.value.code == "AADSTS90002" and e.value.tried == [sandbox.base_url, dead]
    assert "is unknown to" in e.value.message and f"{dead} could not be reached" in e.value.message
    assert e.value.to_json()["unreached"] == [dead]


def test_cli_discover_offline_names_every_cloud_and_the_fix(offline_clouds, capsys):
    assert main(["discover", "contoso.com", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {"ok", "query", "code", "message", "tried"} <= set(data)          # the keys it always had
    assert data["ok"] is False and data["code"] == "network" and data["tried"] == offline_clouds
    assert data["diagnosis"] == "net.refused" and "HTTPS_PROXY" in data["fix"]
    assert main(["discover", "contoso.com"]) == 1
    err = capsys.readouterr().err
    assert "could not be reached" in err and "fix:" in err and "HTTPS_PROXY" in err
    assert "tried: " + ", ".join(offline_clouds) in err
    assert "not found" not in err.lower() and "HTTPSConnectionPool" not in err
