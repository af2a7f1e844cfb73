"""Tenant discovery without signing in.

``GET {authority}/{domain or tenant id}/v2.0/.well-known/openid-configuration``
answers for any tenant the identity platform knows:
- ``issuer`` is ``https://<login host>/<tenant GUID>/v2.0``: the tenant ID;
- ``tenant_region_scope`` (e.g. "EU", "NA", "USGov") and, for government
  tenants, ``tenant_region_sub_scope``;
- ``cloud_instance_name`` ("microsoftonline.com", "microsoftonline.us",
  "chinacloudapi.cn") names the cloud the tenant lives in.
An unknown tenant gets HTTP 400 with AADSTS90002 (a domain or GUID nobody
registered) or AADSTS900023 (not a domain nor a GUID).

With no cloud and no authority given, the clouds' identity platforms are
tried in turn (global first); the first that knows the tenant wins, and the
cloud is read from its answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from wizard.config.clouds import CLOUDS

# cloud_instance_name -> cloud id. microsoftonline.us serves both GCC High and
# DoD; tenant_region_sub_scope tells them apart ("DOD" for DoD).
INSTANCE_CLOUDS = {
    "microsoftonline.com": "global",
    "microsoftonline.us": "usgov",
    "chinacloudapi.cn": "china",
    "partner.microsoftonline.cn": "china",
}
# login host (of the issuer) -> cloud id, when cloud_instance_name is missing.
HOST_CLOUDS = {
    "login.microsoftonline.com": "global", "sts.windows.net": "global",
    "login.microsoftonline.us": "usgov", "login.chinacloudapi.cn": "china",
    "login.partner.microsoftonline.cn": "china",
}
GUID_IN_ISSUER = re.compile(r"/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:/|$)")
DEFAULT_TIMEOUT = (5.0, 15.0)


@dataclass
class TenantInfo:
    tenant_id: str              # the tenant's GUID, from the issuer
    cloud: str | None           # "global" | "usgov" | "usgov-dod" | "china"; None when not recognised
    region_scope: str | None    # tenant_region_scope, e.g. "EU"
    issuer: str
    query: str = ""             # what was asked for (domain or GUID)
    authority: str = ""         # the identity platform that answered
    region_sub_scope: str | None = None
    cloud_instance_name: str | None = None

    def to_json(self) -> dict:
        return {"ok": True, "query": self.query, "tenant_id": self.tenant_id, "cloud": self.cloud,
                "region_scope": self.region_scope, "region_sub_scope": self.region_sub_scope,
                "issuer": self.issuer, "authority": self.authority}


class DiscoveryError(Exception):
    """Discovery did not find the tenant. ``code``: "AADSTS90002" (unknown
    tenant), "AADSTS900023" (not a domain nor a GUID), "invalid" (refused
    before asking), "network" or "unexpected"."""

    def __init__(self, message: str, *, code: str, query: str = "", tried: list[str] | None = None,
                 details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.query = query
        self.tried = tried or []
        self.details = details or {}

    @property
    def unknown_domain(self) -> bool:
        return self.code in ("AADSTS90002", "AADSTS900023")

    def to_json(self) -> dict:
        return {"ok": False, "query": self.query, "code": self.code, "message": self.message,
                "tried": self.tried}


class TenantNotFound(DiscoveryError):
    """No cloud tried knows this domain or tenant ID (AADSTS90002)."""


@dataclass
class _Answer:
    status: int
    data: dict = field(default_factory=dict)


def candidate_authorities(cloud: str | None = None, authority: str | None = None) -> list[str]:
    """The identity platforms to ask, in order, without duplicates."""
    if authority:
        return [authority.rstrip("/")]
    if cloud:
        if cloud not in CLOUDS:
            raise DiscoveryError(f"unknown cloud '{cloud}'; expected one of: {', '.join(CLOUDS)}", code="invalid")
        return [CLOUDS[cloud].authority.rstrip("/")]
    out: list[str] = []
    for c in CLOUDS.values():
        a = c.authority.rstrip("/")
        if a not in out:
            out.append(a)
    return out


def cloud_of(data: dict, issuer: str = "") -> str | None:
    """The cloud id from an openid-configuration answer."""
    name = (data.get("cloud_instance_name") or "").lower()
    cloud = INSTANCE_CLOUDS.get(name)
    if cloud is None:
        host = (urlsplit(issuer).hostname or "").lower()
        cloud = HOST_CLOUDS.get(host)
    if cloud == "usgov" and (data.get("tenant_region_sub_scope") or "").upper() == "DOD":
        cloud = "usgov-dod"
    return cloud


def _session(ca_bundle: str | None, timeout):
    from wizard.net.session import WizardSession
    if not ca_bundle:
        import certifi
        ca_bundle = certifi.where()
    return WizardSession(ca_bundle, timeout)


def _ask(session, authority: str, tenant: str, timeout) -> _Answer:
    import requests
    url = f"{authority}/{quote(tenant, safe='')}/v2.0/.well-known/openid-configuration"
    try:
        resp = session.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise DiscoveryError(f"could not reach {authority}: {exc.__class__.__name__}: {exc}",
                             code="network", query=tenant, tried=[authority]) from None
    try:
        data = resp.json()
    except ValueError:
        data = {}
    return _Answer(resp.status_code, data if isinstance(data, dict) else {})


def _aadsts(data: dict) -> str | None:
    codes = data.get("error_codes") or []
    if codes:
        return f"AADSTS{codes[0]}"
    m = re.search(r"AADSTS\d+", data.get("error_description") or "")
    return m.group(0) if m else None


def discover_tenant(domain_or_id: str, *, cloud: str | None = None, authority: str | None = None,
                    session=None, ca_bundle: str | None = None, timeout=DEFAULT_TIMEOUT) -> TenantInfo:
    """Find a tenant's GUID, cloud and region from a verified domain or a
    tenant ID. Raises TenantNotFound (unknown domain, AADSTS90002) or
    DiscoveryError (bad input, network)."""
    from wizard.config.fields import check_tenant_id

    checked = check_tenant_id(domain_or_id or "")
    if checked.error:
        raise DiscoveryError(checked.error, code="invalid", query=str(domain_or_id))
    tenant = str(checked.value)
    authorities = candidate_authorities(cloud, authority)
    own = session is None
    session = session or _session(ca_bundle, timeout)
    tried: list[str] = []
    last_error: dict = {}
    network: DiscoveryError | None = None
    try:
        for auth in authorities:
            tried.append(auth)
            try:
                ans = _ask(session, auth, tenant, timeout)
            except DiscoveryError as exc:
                network = exc
                continue
            if ans.status == 200 and ans.data.get("issuer"):
                issuer = ans.data["issuer"]
                m = GUID_IN_ISSUER.search(urlsplit(issuer).path + "/")
                if not m:
                    raise DiscoveryError(f"{auth} answered without a tenant GUID in the issuer ({issuer})",
                                         code="unexpected", query=tenant, tried=tried)
                found_cloud = cloud_of(ans.data, issuer)
                if cloud and found_cloud in (None, "usgov") and cloud == "usgov-dod":
                    found_cloud = cloud      # same login host; trust the caller's choice
                return TenantInfo(tenant_id=m.group(1).lower(), cloud=found_cloud,
                                  region_scope=ans.data.get("tenant_region_scope"), issuer=issuer,
                                  query=tenant, authority=auth,
                                  region_sub_scope=ans.data.get("tenant_region_sub_scope"),
                                  cloud_instance_name=ans.data.get("cloud_instance_name"))
            code = _aadsts(ans.data)
            if code in ("AADSTS90002", "AADSTS900023"):
                last_error = {"code": code, "description": (ans.data.get("error_description") or "").split("\r\n")[0]}
                continue
            raise DiscoveryError(f"{auth} answered HTTP {ans.status}" + (f" ({code})" if code else "")
                                 + " instead of the tenant's openid-configuration",
                                 code=code or "unexpected", query=tenant, tried=tried,
                                 details={"status": ans.status})
    finally:
        if own:
            session.close()
    if last_error:
        what = "domain" if not re.fullmatch(r"[0-9a-f-]{36}", tenant) else "tenant ID"
        where = "the identity platform" if len(tried) == 1 else "any Microsoft cloud (" + ", ".join(tried) + ")"
        raise TenantNotFound(f"{what} {tenant} is unknown to {where} ({last_error['code']}). Check the spelling: "
                             f"it must be a verified domain of the tenant (Microsoft Entra ID > Custom domain names) "
                             f"or its Directory (tenant) ID from the app's Overview page.",
                             code=last_error["code"], query=tenant, tried=tried, details=last_error)
    assert network is not None
    raise network
