"""Shared fixtures: the sandbox tenant and an isolated environment per test."""

from __future__ import annotations

import pytest

from wizard.sandbox import Sandbox

CA_ENV = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
# A machine's proxy must not carry the tests' traffic (tests set these when they mean to).
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
             "NO_PROXY", "no_proxy")
# Nor may the user's own choices leak in.
OWN_ENV = ("MAILWIZARD_PROFILE", "MAILWIZARD_TIMEOUT", "MAILWIZARD_MAX_WAIT", "NO_COLOR")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Config, XDG dirs in tmp; no machine-wide CA bundle variables (tests set them when they mean to)."""
    monkeypatch.setenv("MAILWIZARD_CONFIG", str(tmp_path / "config" / "mailwizard.toml"))
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        path = tmp_path / name.lower()
        path.mkdir()
        monkeypatch.setenv(name, str(path))
    for name in CA_ENV + PROXY_ENV + OWN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def sandbox():
    """One sandbox for the whole run; reset (requests, faults, tenant) before each test."""
    sb = Sandbox().start()
    yield sb
    sb.stop()


@pytest.fixture(autouse=True)
def _reset_sandbox(request):
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()
    yield


@pytest.fixture
def fresh_sandbox():
    """A sandbox of its own, for tests that change the tenant (sb.tenant) before use."""
    sb = Sandbox().start()
    yield sb
    sb.stop()


@pytest.fixture(scope="session")
def mail_servers(sandbox):
    """Real Dovecot and Postfix for the interop tests (tests/interop_servers.py), once per session."""
    from interop_servers import session_servers
    yield from session_servers(sandbox)


@pytest.fixture
def relay(sandbox, tmp_path):
    """A relay in a thread against the sandbox: Graph upstream, one client "erp" (relay_helpers: PASSWORD,
    SENDER). Test modules with relays of their own define their own ``relay``."""
    from relay_helpers import RunningRelay, relay_config
    r = RunningRelay(relay_config(sandbox, tmp_path))
    yield r
    r.close()
