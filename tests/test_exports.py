"""Settings sheet and admin runbook: the guides' own field names, the real
client ID, and never a secret where none belongs."""

from __future__ import annotations

import json
import os
import stat
from datetime import date
from pathlib import Path

import pytest

from cli_helpers import help_output
from wizard.cli.main import main
from wizard.config.schema import UserOverride, secrets_of
from wizard.config.files import save
from wizard.guide.exports import admin_runbook, esm_lines, manifest_text, settings_sheet
from wizard.sandbox import sample

GUIDES = Path(__file__).resolve().parents[2] / "shared" / "guides"
TODAY = date(2026, 11, 25)


def guide_text(number: str) -> str:
    found = list(GUIDES.glob(f"{number}_*.txt"))
    if not found:
        pytest.skip(f"guide {number} not available at {GUIDES}")
    return " ".join(found[0].read_text(encoding="utf-8").split())


def monitor_cfg(sandbox, flow="client_secret"):
    cfg = sandbox.config(flow=flow)
    cfg.outgoing.server, cfg.outgoing.port = "outlook.office365.com", 443
    cfg.incoming.accounts[0].types = ["Monitor-to-Monitor", "CRM"]
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com",
                              password="Webshop-Passw0rd!")]
    return cfg


# The exact names in the Monitor G5 screens, as guides 001-003 write them.
G5_SYSTEM_FIELDS = ["E-mail method", "Server address (Exchange/SMTP)", "Port (Exchange/SMTP)",
                    "Application (client) ID", "Directory (tenant) ID", "Authentication flow", "Client secret"]
G5_INCOMING_FIELDS = ["Settings for incoming e-mail", "Service", "Exchange Online", "Polling interval",
                      "Available to all", "Monitor-to-Monitor"]
G5_USER_FIELDS = ["User name (Exchange)", "Password (Exchange)", "WEBSHOP", "According to user settings"]


def test_monitor_g5_sheet_uses_the_guides_field_names(sandbox):
    sheet = settings_sheet(monitor_cfg(sandbox), today=TODAY)
    text_001, text_003 = guide_text("001"), guide_text("003")
    for name in G5_SYSTEM_FIELDS + G5_INCOMING_FIELDS:
        assert name in sheet, name
        assert name in text_001, f"{name!r} is not in guide 001"
    for name in G5_USER_FIELDS:
        assert name in sheet, name
        assert name in text_003, f"{name!r} is not in guide 003"
    assert "E-mail method                   Server based, via Microsoft Exchange Online" in sheet
    assert "Server based, via Microsoft Exchange Online" in text_001
    assert "Authentication flow      Client secret" in sheet
    assert "System settings > System overall" in sheet
    assert "Server address (Exchange/SMTP)  outlook.office365.com" in sheet
    assert "Port (Exchange/SMTP)            443" in sheet
    assert "Polling interval         60 min" in sheet
    assert "Type       Monitor-to-Monitor, CRM" in sheet
    assert sample.SECRET_APP_ID in sheet and sample.TENANT_ID in sheet


def test_monitor_g5_password_flow_names(sandbox):
    sheet = settings_sheet(monitor_cfg(sandbox, "password"), today=TODAY)
    assert "Authentication flow      User name/Password" in sheet
    assert "User name/Password" in guide_text("002")
    assert "User name (Exchange)  svc-erp@contoso.com" in sheet
    assert "User name  svc-erp@contoso.com" in sheet           # incoming account row


def test_sheet_masks_secrets_unless_revealed(sandbox):
    cfg = monitor_cfg(sandbox)
    masked = settings_sheet(cfg, today=TODAY)
    for secret in secrets_of(cfg):
        assert secret not in masked
    assert sample.SECRET_VALUE[:3] + "********" in masked
    shown = settings_sheet(cfg, reveal=True, today=TODAY)
    assert sample.SECRET_VALUE in shown and "Webshop-Passw0rd!" in shown


def test_efecte_esm_lines_match_guide_004(sandbox):
    cfg = sandbox.config(flow="password", protocol="smtp+imap")
    cfg.system = "efecte_esm"
    cfg.endpoints.authority = ""              # the real identity platform, as in the guide
    sheet = settings_sheet(cfg)
    guide = guide_text("004")
    expected = [
        "mail.store.oauth.enabled = true",
        "mail.transport.oauth.enabled = true",
        f"mail.oauth.authorize.endpoint = https://login.microsoftonline.com/{sample.TENANT_ID}/oauth2/v2.0/authorize",
        f"mail.oauth.client.id = {sample.PASSWORD_APP_ID}",
        "mail.oauth.scopes = https://outlook.office365.com/IMAP.AccessAsUser.All,https://outlook.office365.com/SMTP.Send",
    ]
    for line in expected:
        assert line in sheet, line
    # the same lines, with the guide's placeholders, are in guide 004
    for key, _ in esm_lines(cfg):
        assert f"{key} =" in guide
    assert "https://login.microsoftonline.com/{tenantID}/oauth2/v2.0/authorize" in guide
    assert ("https://outlook.office365.com/IMAP.AccessAsUser.All,https://outlook.office365.com/SMTP.Send"
            in guide)
    assert "Edit Platform Settings" in sheet and "Edit Platform Settings" in guide
    assert "30 messages per minute" in sheet and "10,000 recipients per day" in sheet
    assert sample.SERVICE_PASSWORD not in sheet


def test_esm_lines_follow_the_cloud(sandbox):
    cfg = sandbox.config(flow="password")
    cfg.system, cfg.endpoints.authority, cfg.microsoft.cloud = "efecte_esm", "", "usgov"
    lines = dict(esm_lines(cfg))
    assert lines["mail.oauth.authorize.endpoint"].startswith("https://login.microsoftonline.us/")
    assert lines["mail.oauth.scopes"] == ("https://outlook.office365.us/IMAP.AccessAsUser.All,"
                                          "https://outlook.office365.us/SMTP.Send")


def test_runbook_has_the_real_client_id_and_no_secret(sandbox):
    cfg = monitor_cfg(sandbox)
    book = admin_runbook(cfg, today=TODAY)
    assert f'$appId = "{sample.SECRET_APP_ID}"' in book
    for secret in secrets_of(cfg) + [sample.SECRET_VALUE, "Webshop-Passw0rd!"]:
        assert secret not in book
    assert "Connect-ExchangeOnline" in book
    # EWS allow list: read first, then write the merged list
    assert book.index("-RetrieveEwsOperationAccessPolicy") < book.index("Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs")
    assert "replaces the WHOLE list" in book
    # RBAC for Applications, scoped to the config's mailboxes
    assert "New-ServicePrincipal -AppId $appId -ObjectId $spObjectId" in book
    assert "New-ManagementScope" in book and "PrimarySmtpAddress -eq 'erp@contoso.com'" in book
    assert 'New-ManagementRoleAssignment -App $spObjectId -Role "Application EWS.AccessAsApp"' in book
    assert "-CustomResourceScope" in book
    # no IMAP/SMTP sections for an EWS setup
    assert "Add-MailboxPermission" not in book and "Set-CASMailbox" not in book
    # manifest for the client-secret flow (full_access_as_app)
    assert "dc890d15-9560-4a4c-9b7f-a736ec74ec40" in book


def test_runbook_sections_follow_flow_and_protocols(sandbox):
    graph = sandbox.config(flow="client_secret", protocol="graph")
    book = admin_runbook(graph, today=TODAY)
    assert '"Application Mail.Send"' in book and '"Application Mail.ReadWrite"' in book
    assert "EwsAllowedAppIDs" not in book

    app_smtp = sandbox.config(flow="client_secret", protocol="smtp+imap")
    book = admin_runbook(app_smtp, today=TODAY)
    assert "Add-MailboxPermission -Identity $mbx -User $spObjectId -AccessRights FullAccess" in book
    assert 'Set-CASMailbox -Identity "erp@contoso.com" -SmtpClientAuthenticationDisabled $false' in book
    assert "New-ManagementRoleAssignment" not in book

    delegated = sandbox.config(flow="password", protocol="smtp+imap")
    book = admin_runbook(delegated, today=TODAY)
    assert "New-ServicePrincipal" not in book and "Add-MailboxPermission" not in book
    assert "-SmtpClientAuthenticationDisabled $false" in book
    assert sample.SERVICE_PASSWORD not in book


def test_runbook_national_cloud_and_after_shutdown(sandbox):
    cfg = monitor_cfg(sandbox)
    cfg.microsoft.cloud = "usgov"
    book = admin_runbook(cfg, today=date(2027, 5, 1))
    assert "Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovGCCHigh" in book
    assert "Set-OrganizationConfig" not in book and "switched off" in book


def test_on_premises_runbook_has_no_exchange_online_commands(sandbox):
    cfg = monitor_cfg(sandbox)
    cfg.microsoft.exchange = "on_premises"
    book = admin_runbook(cfg, today=TODAY)
    assert "Set-OrganizationConfig" not in book and "Connect-ExchangeOnline" not in book
    assert "on-premises" in book


def test_manifest_export_is_the_manifest_snippet(sandbox):
    text = manifest_text(sandbox.config(flow="password"))
    body = text[text.index("["):text.rindex("]") + 1]
    entries = json.loads(body)
    assert entries[0]["resourceAccess"] == [{"id": "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5", "type": "Scope"}]


def test_cli_export_prints_writes_private_and_checks_usage(sandbox, tmp_path, capsys):
    path = save(monitor_cfg(sandbox), tmp_path / "mw.toml")
    assert main(["export", "sheet", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Application (client) ID" in out and sample.SECRET_VALUE not in out
    target = tmp_path / "out" / "runbook.ps1"
    assert main(["export", "runbook", "--config", str(path), "-o", str(target)]) == 0
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sample.SECRET_APP_ID in target.read_text() and sample.SECRET_VALUE not in target.read_text()
    assert main(["export", "manifest", "--config", str(path)]) == 0
    assert "requiredResourceAccess" in capsys.readouterr().out
    assert main(["export", "runbook", "--reveal", "--config", str(path)]) == 2
    assert main(["export", "sheet", "--config", str(tmp_path / "missing.toml")]) == 2
    with pytest.raises(SystemExit) as e:
        main(["export", "poster", "--config", str(path)])
    assert e.value.code == 2


@pytest.mark.parametrize("argv", [["export", "--help"], ["rotate", "--help"], ["discover", "--help"]])
def test_new_commands_help_without_heavy_imports(argv):
    out = help_output(argv, ('textual', 'msal', 'exchangelib', 'requests'))
    assert "exit codes" in out
    assert out.strip().splitlines()[-1] == "[]"


# -- issue 14: incoming port, secrets from env:/file:, -o - ------------------------------------

@pytest.mark.parametrize("protocol_port, shown", [(None, "443"), (8443, "8443")])
def test_monitor_g5_incoming_port_is_the_one_the_system_must_use(sandbox, protocol_port, shown):
    cfg = monitor_cfg(sandbox)
    cfg.incoming.port = 0                   # "the protocol's default": never type 0 into Monitor
    if protocol_port:
        cfg.outgoing.port = protocol_port   # incoming EWS without its own port uses the outgoing one
    incoming = settings_sheet(cfg, today=TODAY).split("Settings for incoming e-mail", 1)[1]
    port_line = next(line for line in incoming.splitlines() if line.strip().startswith("Port "))
    assert port_line.split()[-1] == shown
    assert "Server name              outlook.office365.com" in incoming


def _env_cfg(sandbox, tmp_path, name="MW_SHEET_SECRET"):
    cfg = monitor_cfg(sandbox)
    cfg.auth.client_secret = f"env:{name}"
    return save(cfg, tmp_path / "mw.toml")


def test_sheet_says_where_a_referenced_secret_comes_from(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MW_SHEET_SECRET", sample.SECRET_VALUE)
    path = _env_cfg(sandbox, tmp_path)
    assert main(["export", "sheet", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    secret_rows = [line for line in out.splitlines() if line.strip().startswith("Client secret")]
    assert len(secret_rows) == 2
    for row in secret_rows:
        assert "environment variable MW_SHEET_SECRET" in row and "--reveal" in row
        assert row.split()[-1] != "env:MW_SHEET_SECRET" and "  env:" not in row   # not a value to type
    assert sample.SECRET_VALUE not in out
    assert main(["export", "sheet", "--reveal", "--config", str(path)]) == 0
    assert capsys.readouterr().out.count(sample.SECRET_VALUE) == 2


def test_sheet_file_reference_names_the_file(sandbox, tmp_path):
    cfg = monitor_cfg(sandbox)
    cfg.auth.client_secret = "file:/etc/erp/client-secret"
    sheet = settings_sheet(cfg, today=TODAY)
    assert "in file /etc/erp/client-secret;" in sheet and "--reveal" in sheet


def test_reveal_fails_when_the_reference_cannot_be_resolved(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MW_SHEET_SECRET", raising=False)
    path = _env_cfg(sandbox, tmp_path)
    rc = main(["export", "sheet", "--reveal", "--config", str(path)])
    got = capsys.readouterr()
    assert rc == 2
    assert got.out == ""                        # no sheet with the reference as its "value"
    assert "auth.client_secret" in got.err and "MW_SHEET_SECRET" in got.err and "not set" in got.err
    target = tmp_path / "sheet.txt"
    assert main(["export", "sheet", "--reveal", "--config", str(path), "-o", str(target)]) == 2
    assert not target.exists()


def test_output_dash_is_standard_output(sandbox, tmp_path, capsys, monkeypatch):
    path = save(monitor_cfg(sandbox), tmp_path / "mw.toml")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "sheet", "--reveal", "--config", str(path), "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert sample.SECRET_VALUE in out and "Application (client) ID" in out
    assert not (tmp_path / "-").exists()
    assert main(["export", "runbook", "--config", str(path), "-o", "-"]) == 0
    assert "Connect-ExchangeOnline" in capsys.readouterr().out and not (tmp_path / "-").exists()


def test_monitor_g5_smtp_port_left_unset_is_the_587_the_runtime_uses(sandbox):
    cfg = monitor_cfg(sandbox)
    cfg.outgoing.protocol, cfg.outgoing.server, cfg.outgoing.port = "smtp", "smtp.office365.com", 443
    sheet = settings_sheet(cfg, today=TODAY)
    assert "Port (Exchange/SMTP)            587" in sheet
