"""Turn what MSAL, exchangelib and the network raise or return into a catalogue
``Diagnosis``. No msal/exchangelib import: exceptions are recognised by class
name, so this stays cheap to import and easy to test with plain objects.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import ssl

from wizard.diagnosis.catalogue import Diagnosis, lookup

_TRACE = re.compile(r"Trace ID:\s*([0-9a-fA-F-]{36})")
_CORR = re.compile(r"Correlation ID:\s*([0-9a-fA-F-]{36})")
_AADSTS = re.compile(r"AADSTS(\d+)")


def _chain(exc, seen=None):
    """exc and every exception it wraps (cause, context, urllib3 reason, args)."""
    seen = seen if seen is not None else set()
    if exc is None or id(exc) in seen or not isinstance(exc, BaseException):
        return
    seen.add(id(exc))
    yield exc
    for inner in (exc.__cause__, exc.__context__, getattr(exc, "reason", None),
                  *[a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]):
        yield from _chain(inner, seen)


def _names(exc) -> set[str]:
    return {c.__name__ for e in _chain(exc) for c in type(e).__mro__}


def _mismatch(text: str) -> bool:
    text = text.lower()
    return "hostname mismatch" in text or "ip address mismatch" in text or "doesn't match" in text


# OpenSSL's verify errors for certificates that break RFC 5280 rules checked
# only under VERIFY_X509_STRICT, which Python 3.13's ssl.create_default_context()
# (and urllib3 2.3+ on 3.13) switch on: X509_V_ERR_* 78 and 80-94. Older
# Pythons accept such certificates, typically made by TLS-inspecting proxies.
_NOT_STRICT = {
    78: "cert info signature and signature algorithm mismatch",
    80: "path length invalid for non-ca cert",
    81: "path length given without key usage keycertsign",
    82: "key usage keycertsign invalid for non-ca cert",
    83: "issuer name empty",
    84: "subject name empty",
    85: "missing authority key identifier",
    86: "missing subject key identifier",
    87: "empty subject alternative name extension",
    88: "subject empty and subject alt name extension not critical",
    89: "basic constraints of ca cert not marked critical",
    90: "authority key identifier marked critical",
    91: "subject key identifier marked critical",
    92: "ca cert does not include key usage extension",
    93: "using cert extension requires at least x509v3",
    94: "certificate public key has explicit ecc parameters",
}


def _not_strict(text: str) -> str | None:
    """The RFC 5280 rule a strict verifier named in ``text``, or None."""
    text = text.lower()
    return next((words for words in _NOT_STRICT.values() if words in text), None)


def strict_problem(exc) -> str | None:
    """What a strict (Python 3.13+) verification rejected in the certificate
    chain, in OpenSSL's words, or None when that is not why it failed."""
    for e in _chain(exc):
        vc = getattr(e, "verify_code", None)
        if isinstance(e, ssl.SSLCertVerificationError) and vc in _NOT_STRICT:
            return str(getattr(e, "verify_message", None) or _NOT_STRICT[vc])
    return _not_strict(" ".join(str(e) for e in _chain(exc)))


def network_code(exc) -> str | None:
    """Our network/TLS code for an exception, or None when it is not one."""
    chain = list(_chain(exc))
    names = _names(exc)
    text = " ".join(str(e) for e in chain).lower()
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            vc = getattr(e, "verify_code", None)
            if vc in (62, 64) or _mismatch(str(e)):     # X509_V_ERR_HOSTNAME/IP_ADDRESS_MISMATCH
                return "tls.hostname"
            if vc == 10 or "expired" in str(e).lower():
                return "tls.expired"
            if vc in _NOT_STRICT or _not_strict(str(e)):
                return "tls.ca_not_strict"
            return "tls.untrusted"
    if "certificate verify failed" in text:
        if _mismatch(text):
            return "tls.hostname"
        if _not_strict(text):
            return "tls.ca_not_strict"
        return "tls.expired" if "expired" in text else "tls.untrusted"
    if "CertificateError" in names and "match" in text:
        return "tls.hostname"
    if names & {"ProxyError", "ProxyRefused"}:
        return "net.proxy"
    for e in chain:
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return "net.dns"
    if "failed to resolve" in text or "name or service not known" in text or "nodename nor servname" in text:
        return "net.dns"
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            return "net.refused"
    if "connection refused" in text:
        return "net.refused"
    if names & {"Timeout", "ConnectTimeout", "ReadTimeout", "ConnectTimeoutError", "ReadTimeoutError",
                "TimeoutError", "timeout"} or "timed out" in text:
        return "net.timeout"
    for e in chain:
        if getattr(e, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "net.unreachable"
    if names & {"ConnectionResetError", "ProtocolError", "RemoteDisconnected", "ChunkedEncodingError"}:
        return "net.reset"
    if names & {"SSLError"} or any(isinstance(e, ssl.SSLError) for e in chain):
        return "tls.error"
    if names & {"ConnectionError", "NewConnectionError", "MaxRetryError"}:
        return "net.unreachable"
    return None


def diagnose_network(exc, *, cfg=None, flow=None, **values) -> Diagnosis | None:
    """A network/TLS Diagnosis, or None when exc is not a network problem.
    ``values`` fill the placeholders (host, port, address...)."""
    code = network_code(exc)
    if code is None:
        return None
    if code == "tls.ca_not_strict":
        values.setdefault("problem", strict_problem(exc))
    return lookup(code, cfg=cfg, flow=flow, service_message=_short(exc), **values)


def _short(exc, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_html(entry) -> bool:
    return bool(entry) and "html" in (entry.get("content_type") or "").lower()


def diagnose_msal(result, *, cfg=None, flow=None, transcript=None, host=None, port=None) -> Diagnosis:
    """A Diagnosis for an MSAL error result dict or for what MSAL raised.

    ``transcript`` is the list of responses the session recorded (see
    ``wizard.net.session``); it tells an unknown tenant from an HTML proxy page and
    gives the HTTP status MSAL hides."""
    transcript = transcript or []
    last = transcript[-1] if transcript else None
    if isinstance(result, dict):
        desc = str(result.get("error_description") or "")
        codes = result.get("error_codes") or [int(c) for c in _AADSTS.findall(desc)[:1]]
        trace = result.get("trace_id") or _first(_TRACE, desc)
        corr = result.get("correlation_id") or _first(_CORR, desc)
        message = desc.split(" Trace ID:")[0].strip() or str(result.get("error") or "")
        if last and last.get("status") == 429:
            return lookup("http.429", cfg=cfg, flow=flow, retry_after=_retry_text(last), service_message=message,
                          trace_id=trace, correlation_id=corr)
        if codes:
            return lookup(str(codes[0]), cfg=cfg, flow=flow, service_message=message,
                          trace_id=trace, correlation_id=corr)
        return lookup(str(result.get("error") or "http.unexpected"), cfg=cfg, flow=flow, host=host,
                      service_message=message, trace_id=trace, correlation_id=corr)
    exc = result
    net = diagnose_network(exc, cfg=cfg, host=host, port=port, flow=flow)
    if net is not None:
        return net
    if _is_html(last):
        return lookup("http.html", cfg=cfg, flow=flow, host=host, service_message=_status_line(last))
    names = _names(exc)
    if last and last.get("status", 0) >= 500:
        return lookup("http.5xx", cfg=cfg, flow=flow, host=host, service_message=_status_line(last))
    if last and last.get("status") == 429:
        return lookup("http.429", cfg=cfg, flow=flow, retry_after=_retry_text(last))
    if isinstance(exc, ValueError) and "JSONDecodeError" not in names:
        # The constructor's tenant discovery failed: the body may name the code.
        body = _json(last)
        if body.get("error_codes") or _AADSTS.search(str(body.get("error_description", ""))):
            return diagnose_msal(body, cfg=cfg, flow=flow, host=host, port=port)
        if last is None or last.get("status") in (400, 404):
            return lookup("AADSTS90002", cfg=cfg, flow=flow, service_message=_short(exc))
    if "MsalServiceError" in names:
        return lookup("http.5xx", cfg=cfg, flow=flow, host=host, service_message=_short(exc))
    return lookup("http.unexpected", cfg=cfg, flow=flow, host=host,
                  service_message=_status_line(last) if last else _short(exc))


STAGES = {"target": "stage 1 (system and flow)", "registration": "stage 2 (app registration)",
          "ids": "stage 3 (IDs and secret)", "mail": "stage 4 (mail settings)"}


def warning_fix(field_name: str, screen: str | None) -> str:
    """The fix of a config step that passed with a warning: what the warning
    means for the test, and where the named field is changed."""
    where = f" on {STAGES[screen]}" if screen in STAGES else ""
    return (f"The test goes on with this warning. To clear it, change {field_name} as the message says: in the "
            f"wizard (`mailwizard`){where} or in the config file.")


def _first(rx, text):
    m = rx.search(text or "")
    return m.group(1) if m else None


def _json(entry) -> dict:
    if not entry or not entry.get("body"):
        return {}
    try:
        data = json.loads(entry["body"])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _status_line(entry) -> str:
    return f"HTTP {entry.get('status')} ({entry.get('content_type') or 'no content type'}) from {entry.get('url')}"


def _retry_text(entry) -> str:
    value = (entry.get("headers") or {}).get("retry-after")
    return f"{value} seconds" if value and str(value).isdigit() else "a minute"


# -- EWS ------------------------------------------------------------------

def diagnose_ews(exc, *, cfg=None, flow=None, address=None, response=None, host=None,
                 port=None) -> Diagnosis:
    """A Diagnosis for an exchangelib exception. ``response`` is the last HTTP
    response the EWS adapter recorded ({status, headers, content_type, ...}):
    exchangelib hides the status and headers that tell 401/403 cases apart."""
    kw = dict(cfg=cfg, flow=flow, address=address, host=host, port=port)
    status = (response or {}).get("status")
    headers = (response or {}).get("headers") or {}
    name = type(exc).__name__
    message = _short(exc)
    if name == "ErrorServerBusy" or status == 429:
        wait = getattr(exc, "back_off", None)
        return lookup(name if name == "ErrorServerBusy" else "http.429",
                      retry_after=f"{wait:g} seconds" if wait else None, **kw)
    if status == 403 or (name == "MalformedResponseError" and "Code: 403" in str(exc)):
        reason = headers.get("x-ews-policy-reason")
        if reason or "x-ews-policy-reason" in str(exc).lower():
            return lookup("X-EWS-Policy-Reason", service_message=f"X-EWS-Policy-Reason: {reason}"
                          if reason else None, **kw)
        return lookup("ews.403", service_message="HTTP 403 Forbidden", **kw)
    if status == 401 or name == "UnauthorizedError":
        diag = headers.get("x-ms-diagnostics", "")
        code = "ews.401.2000008" if "2000008" in diag else "ews.401"
        return lookup(code, service_message=f"x-ms-diagnostics: {diag}" if diag else "HTTP 401", **kw)
    if name in ("ErrorTimeoutExpired", "TransportError"):
        inner = (response or {}).get("exception")
        net = diagnose_network(inner or exc, **kw)
        if net is not None:
            return net
        return lookup("net.timeout" if name == "ErrorTimeoutExpired" else "tls.error",
                      service_message=message, **kw)
    if name == "RedirectError":
        return lookup("ews.redirect", service_message=message, **kw)
    if _is_html(response):
        return lookup("http.html", service_message=_status_line(response), **kw)
    if name.startswith("Error"):
        from wizard.diagnosis.catalogue import CATALOGUE
        if name in CATALOGUE:
            return lookup(name, service_message=message, **kw)
        d = lookup("ews.error", service_message=message, **kw)
        d.code = name
        return d
    net = diagnose_network(exc, **kw)
    if net is not None:
        return net
    return lookup("http.unexpected", service_message=message, **kw)
