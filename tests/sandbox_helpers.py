"""Shared by the sandbox tests: token requests to the sandbox's identity
platform, and a record of every access token it issues."""

from __future__ import annotations

import json

import requests

from wizard.sandbox import sample

EXCHANGE = "https://outlook.office365.com"


def token_request(sb, tenant: str = sample.TENANT_ID, **form) -> requests.Response:
    return requests.post(f"{sb.base_url}/{tenant}/oauth2/v2.0/token", data=form, verify=sb.ca_path, timeout=5)


def app_token(sb, resource=EXCHANGE, client_id=sample.SECRET_APP_ID, secret=sample.SECRET_VALUE) -> str:
    """An app-only (client credentials) access token for ``resource``."""
    r = token_request(sb, grant_type="client_credentials", client_id=client_id, client_secret=secret,
                      scope=f"{resource}/.default")
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def password_token(sb, scope: str) -> str:
    """A delegated access token of the service user (password grant, the password app) for ``scope``."""
    r = token_request(sb, grant_type="password", client_id=sample.PASSWORD_APP_ID, scope=scope,
                      username=sample.SERVICE_USER, password=sample.SERVICE_PASSWORD)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def record_issued_tokens(sb, monkeypatch) -> list[str]:
    """A list that collects every access token ``sb`` issues from now on (for the test's duration)."""
    tokens = []
    original = sb.identity._token_response

    def recording(*args, **kwargs):
        resp = original(*args, **kwargs)
        try:
            tokens.append(json.loads(resp.body)["access_token"])
        except (ValueError, KeyError, TypeError):
            pass
        return resp
    monkeypatch.setattr(sb.identity, "_token_response", recording)
    return tokens
