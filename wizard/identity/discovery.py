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
cloud is read from its answer. When none of them can be reached, the error
says so (code "network"), with the network diagnosis of the catalogue
(net.dns, net.proxy, tls.untrusted...) and its fix, and names every platform
tried; "not found" is kept for a tenant an identity platform said it does not know.
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
                 details: dict | None = None, fix: str = "", diagnosis: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.query = query
        self.tried = tried or []
        self.details = details or {}
        self.fix = fix                  # what to do, in a sentence or two ("" when the message says it)
        self.diagnosis = diagnosis      # the catalogue's code of a network failure (net.dns, tls.untrusted...)

    @property
    def unknown_domain(self) -> bool:
        return self.code in ("AADSTS90002", "AADSTS900023")

    def to_json(self) -> dict:
        out = {"ok": False, "query": self.query, "code": self.code, "message": self.message,
               "tried": self.tried, "fix": self.fix}
        if self.diagnosis:
            out["diagnosis"] = self.diagnosis
        if self.details.get("unreached"):
            out["unreached"] = self.details["unreached"]
        return out


class TenantNotFound(DiscoveryError):
    """No cloud tried knows this domain or tenant ID (AADSTS90002)."""


class _Unreachable(Exception):
    """An identity platform did not answer (network, proxy, TLS): ``exc`` is why."""

    def __init__(self, exc: Exception):
        super().__init__(str(exc))
        self.exc = exc


NET_FIX = ("Check this computer's DNS, firewall and proxy: it must reach the identity platform over HTTPS. "
           "Behind a proxy, set HTTPS_PROXY (e.g. http://proxy.example.com:8080).")

TLS_FIX = ("If the network inspects TLS, give its CA certificate (a PEM file) as the CA bundle: "
           "endpoints.ca_bundle in the config, or REQUESTS_CA_BUNDLE.")


def _network_diagnosis(authority: str, exc: Exception):
    """The catalogue's Diagnosis for an identity platform that did not answer."""
    from wizard.config.endpoints import url_host
    from wizard.diagnosis.catalogue import lookup
    from wizard.diagnosis.classify import diagnose_network
    host, port = url_host(authority)
    return (diagnose_network(exc, host=host, port=port)
            or lookup("net.unreachable", host=host, port=port, service_message=f"{type(exc).__name__}: {exc}"))


def _unreachable(tenant: str, tried: list[str], failures: dict[str, Exception]) -> DiscoveryError:
    """No identity platform answered: say so with the network diagnosis of the first
    one tried (the others' codes are in ``details``) and its fix."""
    from wizard.config.endpoints import url_host
    diagnoses = {auth: _network_diagnosis(auth, exc) for auth, exc in failures.items()}
    first = next(iter(diagnoses.values()))
    hosts = ", ".join(url_host(a)[0] for a in failures)
    which = f"{len(failures)} clouds tried" if len(failures) > 1 else hosts
    cause = first.cause[0].lower() + first.cause[1:] if first.cause.startswith("The ") else first.cause
    message = f"The Microsoft identity platform could not be reached to look up {tenant} ({which}): {cause}"
    fix = (NET_FIX if first.code.startswith("net.") and first.code != "net.proxy"
           else TLS_FIX if first.code == "tls.untrusted" else first.fix)
    return DiscoveryError(message, code="network", query=tenant, tried=tried, fix=fix, diagnosis=first.code,
                          details={"unreached": list(failures),
                                   "diagnoses": {a: d.code for a, d in diagnoses.items()},
                                   "cause": first.cause, "service_message": first.service_message})


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
    if not ca_bundle:   # as the connection test: REQUESTS_CA_BUNDLE / SSL_CERT_FILE, else certifi
        from wizard.config.schema import environment_ca_bundle
        ca_bundle = environment_ca_bundle()
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
        raise _Unreachable(exc) from None
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
    failures: dict[str, Exception] = {}     # authority -> why it did not answer
    try:
        for auth in authorities:
            tried.append(auth)
            try:
                ans = _ask(session, auth, tenant, timeout)
            except _Unreachable as exc:
                failures[auth] = exc.exc
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
        answered = [a for a in tried if a not in failures]
        where = ("the identity platform" if len(answered) == 1 and not failures
                 else "any Microsoft cloud (" + ", ".join(answered) + ")" if not failures
                 else ", ".join(answered))
        fix = ("Check the spelling: it must be a verified domain of the tenant (Microsoft Entra ID > Custom domain "
               "names) or its Directory (tenant) ID from the app's Overview page.")
        unreached = ""
        if failures:
            gone = _unreachable(tenant, tried, failures)
            unreached = (f" {', '.join(failures)} could not be reached ({gone.diagnosis}), so the tenant may "
                         f"live in that cloud.")
            fix += " " + gone.fix
            last_error = {**last_error, "unreached": list(failures)}
        raise TenantNotFound(f"{what} {tenant} is unknown to {where} ({last_error['code']}).{unreached} {fix}",
                             code=last_error["code"], query=tenant, tried=tried, details=last_error, fix=fix)
    raise _unreachable(tenant, tried, failures)
