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
