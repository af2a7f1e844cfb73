"""The HTTP session MSAL talks through.

- Trusts the configured CA bundle (``cfg.ca_bundle``: config, else
  REQUESTS_CA_BUNDLE / SSL_CERT_FILE, else certifi) on *every request*: requests
  lets a global REQUESTS_CA_BUNDLE override ``Session.verify``, but never a
  per-request ``verify``. Verification is never switched off, whatever a
  caller passes.
- Honours HTTPS_PROXY / NO_PROXY (``trust_env`` stays on).
- Bounded timeouts on every request (connect 5 s, read 20 s by default).
- Keeps a non-default port on the authority host: MSAL's user-realm discovery
  builds ``https://<host>/common/userrealm/...`` without the port.
- Records a transcript of responses (status, content type, a few headers, and
  the body of error and non-JSON answers only: a 2xx JSON body may hold a token)
  so failures can be diagnosed when MSAL hides the HTTP details.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests

from wizard.net.trust import trust_path

DEFAULT_TIMEOUT = (5.0, 20.0)   # (connect, read) seconds
_KEEP_HEADERS = ("retry-after", "content-type", "www-authenticate", "x-ms-request-id",
                 "client-request-id", "x-ms-diagnostics", "x-ews-policy-reason", "location")
_BODY_LIMIT = 4000


class WizardSession(requests.Session):
    def __init__(self, verify: str, timeout=DEFAULT_TIMEOUT, authority_netloc: tuple[str, int] | None = None):
        super().__init__()
        self.verify = verify
        self.trust = verify
        self.timeout = timeout
        self.authority_netloc = authority_netloc   # (host, port) when the port is explicit
        self.transcript: list[dict] = []
        self.hooks["response"].append(self._record)

    def request(self, method, url, **kwargs):
        kwargs["verify"] = self.trust            # per request: beats REQUESTS_CA_BUNDLE; never False
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, self.fix_port(url), **kwargs)

    def fix_port(self, url: str) -> str:
        if not self.authority_netloc:
            return url
        parts = urlsplit(url)
        host, port = self.authority_netloc
        if parts.scheme == "https" and parts.port is None and (parts.hostname or "").lower() == host:
            netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            return urlunsplit(parts._replace(netloc=netloc))
        return url

    def _record(self, response, *args, **kwargs):
        ctype = response.headers.get("content-type", "")
        entry = {
            "method": response.request.method if response.request is not None else None,
            "url": response.url.split("?")[0],
            "status": response.status_code,
            "content_type": ctype,
            "headers": {k: response.headers[k] for k in _KEEP_HEADERS if k in response.headers},
        }
        if response.status_code >= 300 or "json" not in ctype.lower():
            entry["body"] = response.text[:_BODY_LIMIT]
        self.transcript.append(entry)
        return response


def authority_netloc(cfg) -> tuple[str, int] | None:
    parts = urlsplit(cfg.authority_host)
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None or port == 443 or not parts.hostname:
        return None
    return parts.hostname.lower(), port


def make_session(cfg, *, timeout=DEFAULT_TIMEOUT) -> WizardSession:
    """A requests session for MSAL that follows the rules in the module doc."""
    return WizardSession(trust_path(cfg), timeout, authority_netloc(cfg))
