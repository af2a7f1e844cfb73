"""The admin's device-code sign-in that `register` and `doctor` start with: the
bootstrap public client (Microsoft Graph Command Line Tools unless told), the
Graph scopes asked for, and the tokens kept in memory only."""

from __future__ import annotations

from wizard.config.clouds import GRAPH_CLI_CLIENT_ID
from wizard.registration import needs


def bootstrap_config(cfg, client_id: str = GRAPH_CLI_CLIENT_ID):
    """A copy of ``cfg`` that signs in with the bootstrap public client (device code)."""
    from wizard.config.schema import copy_config
    boot = copy_config(cfg)
    boot.microsoft.client_id = client_id
    boot.microsoft.tenant_id = cfg.microsoft.tenant_id or "organizations"
    boot.auth.flow, boot.auth.username, boot.auth.password = "device_code", "", ""
    return boot


def admin_scopes(cfg) -> list[str]:
    return [f"{cfg.cloud.graph_url.rstrip('/')}/{s}" for s in needs.ADMIN_SCOPES]


def start_signin(cfg, client_id: str = GRAPH_CLI_CLIENT_ID):
    """The device code to show (wizard.identity.device_code.Flow); the tokens stay in memory."""
    from wizard.diagnosis.registration import for_signin
    from wizard.identity import device_code
    from wizard.identity.msal_common import AuthError
    boot = bootstrap_config(cfg, client_id)
    try:
        return boot, device_code.start(boot, scopes=admin_scopes(cfg), persist=False)
    except AuthError as exc:
        raise AuthError(for_signin(exc.diagnosis, client_id)) from None


def finish_signin(boot, flow, *, on_tick=None, sleep=None, cancel=None):
    from wizard.diagnosis.registration import for_signin
    from wizard.identity import device_code
    from wizard.identity.msal_common import AuthError
    try:
        return device_code.wait(boot, flow, on_tick=on_tick, sleep=sleep, cancel=cancel)
    except AuthError as exc:
        raise AuthError(for_signin(exc.diagnosis, boot.microsoft.client_id)) from None
