"""`mailwizard register` against the sandbox: a fresh config (system, flow and
protocols only, plus the sandbox's endpoints) is registered through Graph after
one admin device-code sign-in, then `mailwizard check` passes; idempotency;
each refusal gets its own diagnosis; a partial run is completed by the next."""

from __future__ import annotations

import json

import pytest

from wizard.cli.main import main
from wizard.config.files import load as _load_strict, save


def load(path):
    return _load_strict(path, strict=False)
from wizard.sandbox import Fault, sample

SHAPES = [("monitor_g5", "client_secret", "ews"), ("monitor_g5", "client_secret", "graph"),
          ("efecte_esm", "password", "smtp+imap"), ("monitor_g5", "certificate", "ews"),
          ("monitor_g5", "password", "ews"), ("generic", "certificate", "graph")]


def _fresh(sb, tmp_path, system="monitor_g5", flow="client_secret", protocol="ews", name="new.toml"):
    path = tmp_path / name
    save(sample.unregistered_config(sb, system, flow, protocol), path)
    return path


def _approve_as(sb, upn):
    sb.device.auto_approve = (upn, 0.0)


def _register(capsys, path, *extra):
    code = main(["register", "--config", str(path), "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _results(doc):
    return {a["id"]: a["result"] for a in doc["actions"]}


@pytest.mark.parametrize("system,flow,protocol", SHAPES)
def test_register_then_check_passes(sandbox, tmp_path, capsys, system, flow, protocol):
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path, system, flow, protocol)
    code, doc = _register(capsys, path)
    assert code == 0, doc
    assert doc["ok"] and doc["changed"] and doc["check"]["ok"]
    cfg = load(path)
    assert cfg.microsoft.tenant_id == sample.TENANT_ID
    assert cfg.microsoft.client_id == doc["client_id"] != ""
    assert cfg.microsoft.client_id not in (sample.SECRET_APP_ID, sample.PASSWORD_APP_ID)
    if flow == "client_secret":
        assert cfg.auth.secret_expires is not None and cfg.auth.client_secret[3:6] == "8Q~"
        assert cfg.auth.client_secret not in json.dumps(doc)        # never printed
    if flow == "certificate":
        assert cfg.auth.thumbprint and cfg.auth.certificate_expires
    assert (path.stat().st_mode & 0o777) == 0o600
    assert main(["check", "--config", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]


def test_second_run_changes_nothing(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path, protocol="graph")
    assert _register(capsys, path)[0] == 0
    before = path.read_text()
    apps = len(sandbox.directory.apps)
    sandbox.clear()
    code, doc = _register(capsys, path)
    assert code == 0 and doc["ok"] and not doc["changed"]
    results = _results(doc)
    assert results["app"] == results["sp"] == results["app_roles"] == results["grants"] == "unchanged"
    assert results["secret"] == results["config"] == "unchanged"
    assert path.read_text() == before
    assert len(sandbox.directory.apps) == apps
    app = next(iter(sandbox.directory.apps.values()))
    assert len(app["passwordCredentials"]) == 1
    writes = [r for r in sandbox.requests if r.path.startswith("/v1.0/") and r.method in ("POST", "PATCH")
              and "/users/" not in r.path]
    assert writes == []


def test_new_secret_replaces_the_old_after_the_test(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path)
    assert _register(capsys, path)[0] == 0
    old = load(path).auth.client_secret
    code, doc = _register(capsys, path, "--new-secret")
    assert code == 0, doc
    new = load(path).auth.client_secret
    assert new != old
    app = next(iter(sandbox.directory.apps.values()))
    assert [p["hint"] for p in app["passwordCredentials"]] == [new[:3]]
    assert _results(doc)["old_secret"] == "removed"


def test_dry_run_plans_without_signing_in(sandbox, tmp_path, capsys):
    path = _fresh(sandbox, tmp_path, protocol="graph")
    assert main(["register", "--config", str(path), "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ids = [a["id"] for a in doc["actions"]]
    assert ids == ["signin", "lookup", "app", "sp", "app_roles", "grants", "secret", "config", "check"]
    assert all(a["guide_step"] for a in doc["actions"])
    assert "Prefer: create-if-missing" in doc["actions"][2]["request"]
    assert "Microsoft Graph Mail.Send" in doc["actions"][4]["request"]
    assert not [r for r in sandbox.requests]        # nothing reached the tenant
    assert main(["register", "--config", str(path), "--dry-run"]) == 0
    assert "[Azure steps 20-22] secret" in capsys.readouterr().out


def test_usage_errors_exit_2(sandbox, tmp_path, capsys):
    path = _fresh(sandbox, tmp_path)
    assert main(["register", "--config", str(path), "--admin-client-id", "nope"]) == 2
    assert "--admin-client-id" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["register", "--config", str(path), "--secret-months", "30"])
    assert e.value.code == 2


# -- refusals ---------------------------------------------------------------------------------------

def _signin_refusal(sandbox, tmp_path, capsys, code):
    path = _fresh(sandbox, tmp_path)
    rc, doc = _register(capsys, path)
    assert rc == 1 and not doc["ok"]
    (action,) = doc["actions"]
    assert action["id"] == "signin" and action["code"] == code
    assert load(path).microsoft.client_id == ""
    return action


def test_conditional_access_blocks_device_code(sandbox, tmp_path, capsys):
    sandbox.tenant.user(sample.ADMIN_USER).conditional_access_block = True
    _approve_as(sandbox, sample.ADMIN_USER)
    action = _signin_refusal(sandbox, tmp_path, capsys, "AADSTS53003")
    assert "device code" in action["detail"] and "portal steps" in action["fix"]


def test_non_admin_cannot_consent_at_signin(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.SERVICE_USER)
    action = _signin_refusal(sandbox, tmp_path, capsys, "AADSTS90094")
    assert "Cloud Application Administrator" in action["fix"]


@pytest.mark.parametrize("change,code", [
    (lambda app: setattr(app, "preauthorized", {"User.Read"}), "AADSTS65002"),
    (lambda app: setattr(app, "assigned_users", set()), "AADSTS50105"),
    (lambda app: setattr(app, "disabled", True), "AADSTS7000112"),
])
def test_bootstrap_app_refusals(sandbox, tmp_path, capsys, change, code):
    change(sandbox.tenant.app(sample.BOOTSTRAP_APP_ID))
    _approve_as(sandbox, sample.ADMIN_USER)
    action = _signin_refusal(sandbox, tmp_path, capsys, code)
    assert "--admin-client-id" in action["fix"]


def _consented_bootstrap(sandbox):
    """An admin consented the bootstrap app for the organisation earlier: everyone gets its scopes."""
    sandbox.tenant.app(sample.BOOTSTRAP_APP_ID).scopes["graph"] = {
        "Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All"}


def test_users_may_not_register_apps(sandbox, tmp_path, capsys):
    _consented_bootstrap(sandbox)
    sandbox.tenant.users_can_register_apps = False
    _approve_as(sandbox, sample.SERVICE_USER)
    path = _fresh(sandbox, tmp_path)
    rc, doc = _register(capsys, path)
    assert rc == 1
    failed = doc["actions"][-1]
    assert failed["id"] == "app" and failed["code"] == "register.create_denied"
    assert "Application Developer" in failed["fix"] or "Application Developer" in failed["detail"]
    assert doc["exists_now"]["app"] is None


def test_non_admin_may_create_but_not_consent(sandbox, tmp_path, capsys):
    _consented_bootstrap(sandbox)
    _approve_as(sandbox, sample.SERVICE_USER)
    path = _fresh(sandbox, tmp_path)
    rc, doc = _register(capsys, path)
    assert rc == 1
    assert _results(doc)["app"] == "created" and _results(doc)["sp"] == "created"
    failed = doc["actions"][-1]
    assert failed["id"] == "app_roles" and failed["code"] == "register.consent_denied"
    assert doc["admin_consent_url"].endswith(f"adminconsent?client_id={doc['client_id']}")
    assert doc["exists_now"]["app"] == doc["client_id"] and doc["exists_now"]["app_roles"] == []
    assert "New-ServicePrincipal" in json.dumps(doc["beyond_graph"])    # the runbook to send on


def test_cloud_app_admin_cannot_grant_graph_app_roles_then_admin_completes(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.CLOUD_APP_ADMIN)
    path = _fresh(sandbox, tmp_path, protocol="graph")
    rc, doc = _register(capsys, path)
    assert rc == 1
    failed = doc["actions"][-1]
    assert failed["code"] == "register.graph_roles_denied" and "Privileged Role Administrator" in failed["detail"]
    assert load(path).microsoft.client_id == ""            # nothing half-written into the config
    # the admin runs it again: the same app is completed, nothing duplicated
    _approve_as(sandbox, sample.ADMIN_USER)
    rc, doc2 = _register(capsys, path)
    assert rc == 0, doc2
    assert doc2["client_id"] == doc["client_id"]
    assert _results(doc2)["app"] == "unchanged" and _results(doc2)["app_roles"] == "added"
    assert len(sandbox.directory.apps) == 1


def test_cloud_app_admin_may_grant_exchange_roles(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.CLOUD_APP_ADMIN)
    path = _fresh(sandbox, tmp_path, protocol="ews")
    rc, doc = _register(capsys, path)
    assert rc == 0, doc


def test_tenant_forbids_secrets(sandbox, tmp_path, capsys):
    sandbox.tenant.secrets_blocked = True
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path)
    rc, doc = _register(capsys, path)
    assert rc == 1
    failed = doc["actions"][-1]
    assert failed["id"] == "secret" and failed["code"] == "register.secrets_blocked"
    assert "certificate" in failed["fix"]


def test_replication_errors_are_retried(sandbox, tmp_path):
    from wizard.registration.engine import Options, register
    from wizard.registration.signin import admin_scopes, bootstrap_config
    from wizard.check.engine import Tuning
    from wizard.identity import device_code
    sandbox.replication_delay(calls=3, tokens=2)    # SP creation, the grants; then two tokens: AADSTS700016
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path)
    cfg = load(path)
    boot = bootstrap_config(cfg)
    token = device_code.wait(boot, device_code.start(boot, scopes=admin_scopes(cfg), persist=False),
                             sleep=lambda s: None)
    waits, events = [], []
    result = register(cfg, path, token, Options(sleep=waits.append, on_event=lambda k, t: events.append((k, t)),
                                                tuning=Tuning(auth_attempts=1, propagation_wait=0,
                                                              sleep=lambda s: None)))
    assert result.ok, result.to_json()
    assert sandbox.tenant.replication_lag == 0 and sandbox.tenant.token_lag == 0
    assert any(k == "wait" for k, _ in events) and any(k == "check" and "AADSTS700016" in t for k, t in events)
    assert len(waits) >= 3 and all(w <= 15 for w in waits)


def test_replication_that_never_ends_is_bounded(sandbox, tmp_path):
    from wizard.registration.engine import Options, register
    from wizard.registration.signin import admin_scopes, bootstrap_config
    from wizard.identity import device_code
    sandbox.tenant.replication_lag = 1000
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path)
    cfg = load(path)
    boot = bootstrap_config(cfg)
    token = device_code.wait(boot, device_code.start(boot, scopes=admin_scopes(cfg), persist=False),
                             sleep=lambda s: None)
    waits = []
    result = register(cfg, path, token, Options(sleep=waits.append, graph_retries=3))
    assert not result.ok and result.diagnosis.code == "register.replication"
    assert len(waits) == 3
    assert result.exists["app"] and result.exists["service_principal"] is None


def test_sandbox_upsert_and_errors_follow_graph(sandbox):
    """The sandbox's directory answers as Microsoft documents: 201 then 204 for the upsert,
    404 without Prefer, 409 for a second service principal, 403 for a missing scope."""
    import requests
    _approve_as(sandbox, sample.ADMIN_USER)
    cfg = sandbox.config()
    from wizard.registration.signin import admin_scopes, bootstrap_config
    from wizard.identity import device_code
    boot = bootstrap_config(cfg)
    token = device_code.wait(boot, device_code.start(boot, scopes=admin_scopes(cfg), persist=False),
                             sleep=lambda s: None).access_token
    s = requests.Session()
    s.verify = sandbox.ca_path
    h = {"Authorization": f"Bearer {token}"}
    url = f"{sandbox.base_url}/v1.0/applications(uniqueName='t1')"
    assert s.patch(url, json={"displayName": "T"}, headers=h).status_code == 404
    r = s.patch(url, json={"displayName": "T"}, headers={**h, "Prefer": "create-if-missing"})
    assert r.status_code == 201 and r.json()["uniqueName"] == "t1"
    app_id = r.json()["appId"]
    assert s.patch(url, json={"displayName": "T2"}, headers={**h, "Prefer": "create-if-missing"}).status_code == 204
    assert s.get(f"{sandbox.base_url}/v1.0/applications?$filter=appId eq '{app_id}'",
                 headers=h).json()["value"][0]["displayName"] == "T2"
    assert s.post(f"{sandbox.base_url}/v1.0/servicePrincipals", json={"appId": app_id}, headers=h).status_code == 201
    r = s.post(f"{sandbox.base_url}/v1.0/servicePrincipals", json={"appId": app_id}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "Request_MultipleObjectsWithSameKeyValue"
    r = s.get(f"{sandbox.base_url}/v1.0/servicePrincipals(appId='{app_id}')", headers=h)
    assert r.status_code == 200
    pw = s.post(f"{sandbox.base_url}/v1.0/applications(appId='{app_id}')/addPassword",
                json={"passwordCredential": {"displayName": "x"}}, headers=h).json()
    assert pw["secretText"][3:6] == "8Q~" and pw["hint"] == pw["secretText"][:3]
    listed = s.get(f"{sandbox.base_url}/v1.0/applications(appId='{app_id}')", headers=h).json()
    assert listed["passwordCredentials"][0]["secretText"] is None
    assert s.post(f"{sandbox.base_url}/v1.0/applications(appId='{app_id}')/removePassword",
                  json={"keyId": pw["keyId"]}, headers=h).status_code == 204
    app_only = s.post(f"{sandbox.base_url}/{sample.TENANT_ID}/oauth2/v2.0/token",
                      data={"grant_type": "client_credentials", "client_id": sample.SECRET_APP_ID,
                            "client_secret": sample.SECRET_VALUE,
                            "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    r = s.get(f"{sandbox.base_url}/v1.0/applications", headers={"Authorization": f"Bearer {app_only}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"


def test_sandbox_approve_device_codes_flag_parses():
    from wizard.cli.main import build_parser
    args = build_parser().parse_args(["sandbox", "--approve-device-codes", "--unregistered", "--write-config", "x"])
    assert args.approve_device_codes and args.unregistered


def test_register_help_explains_the_borrowed_client_id(capsys):
    with pytest.raises(SystemExit):
        main(["register", "--help"])
    out = capsys.readouterr().out
    assert "14d82eec-204b-4c2f-b7e8-296a70dab67e" in out and "--admin-client-id" in out
    assert "tolerates this but does not support it for third-party tools" in out


def test_busy_graph_is_retried_then_reported(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path)
    sandbox.inject(Fault("/v1.0/applications", status=503, times=2, retry_after=0))
    rc, doc = _register(capsys, path)
    assert rc == 0, doc                                  # two 503s with Retry-After: retried
    sandbox.reset_faults()
    sandbox.inject(Fault("/v1.0/applications", status=503, times=None, retry_after=0))
    rc, doc = _register(capsys, path)
    assert rc == 1 and doc["actions"][-1]["id"] == "app" and doc["actions"][-1]["code"] == "graph.ServiceNotAvailable"


def test_tenant_without_exchange_online(sandbox, tmp_path, capsys):
    from wizard.sandbox.graph_apps import EXCHANGE_APP_ID
    sp = sandbox.directory.sp_by_app(EXCHANGE_APP_ID)
    del sandbox.directory.sps[sp["id"]]
    _approve_as(sandbox, sample.ADMIN_USER)
    rc, doc = _register(capsys, _fresh(sandbox, tmp_path))
    assert rc == 1 and doc["actions"][-1]["code"] == "register.resource_missing"
    assert "Office 365 Exchange Online" in doc["actions"][-1]["detail"]


# -- doctor ----------------------------------------------------------------------------------------

def _doctor(capsys, path):
    code = main(["doctor", "--config", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_doctor_finds_nothing_wrong_after_register(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path, protocol="graph")
    assert _register(capsys, path)[0] == 0
    code, doc = _doctor(capsys, path)
    assert code == 0, doc
    assert doc["ok"] and all(f["severity"] == "info" for f in doc["findings"])


def test_doctor_reports_what_the_portal_got_wrong(sandbox, tmp_path, capsys):
    from datetime import date, timedelta
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path, protocol="graph")
    assert _register(capsys, path)[0] == 0
    app = next(iter(sandbox.directory.apps.values()))
    app["isFallbackPublicClient"] = True                    # the portal toggle on the wrong setting
    app["signInAudience"] = "AzureADMultipleOrgs"
    sp = sandbox.directory.sp_by_app(app["appId"])
    sandbox.directory.assignments = [a for a in sandbox.directory.assignments   # consent for Mail.Send revoked
                                     if not (a["principalId"] == sp["id"] and a["appRoleId"] ==
                                             "b633e1c5-b582-4048-a93e-9f11b44c7e96")]
    cfg = load(path)
    cfg.auth.secret_expires = date.today() + timedelta(days=3)   # the config remembers the wrong date
    save(cfg, path)
    code, doc = _doctor(capsys, path)
    assert code == 1
    ids = {f["id"]: f for f in doc["findings"]}
    assert ids["app.public_client"]["severity"] == "warn" and ids["app.audience"]["severity"] == "warn"
    assert ids["consent:Mail.Send"]["severity"] == "fail" and ids["consent:Mail.Send"]["guide_step"] == "Azure steps 15-16"
    assert "consent:Mail.ReadWrite" not in ids
    assert ids["secret.expiry_in_config"]["severity"] == "warn"
    assert all(f["cause"] and f["fix"] for f in doc["findings"])


def test_doctor_secret_not_on_the_app_and_missing_app(sandbox, tmp_path, capsys):
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path)
    assert _register(capsys, path)[0] == 0
    cfg = load(path)
    cfg.auth.client_secret = sample.SECRET_VALUE                 # a secret of another app
    save(cfg, path)
    code, doc = _doctor(capsys, path)
    assert code == 1 and any(f["id"] == "secret.not_on_app" for f in doc["findings"])
    cfg.microsoft.client_id = "00000000-1111-2222-3333-444444444444"
    save(cfg, path)
    code, doc = _doctor(capsys, path)
    assert code == 1 and doc["findings"][0]["id"] == "app.missing"


def test_register_and_doctor_help_stay_light():
    from cli_helpers import help_output
    for argv in (["register", "--help"], ["doctor", "--help"]):
        out = help_output(argv, ("textual", "msal", "exchangelib"))
        assert out.strip().splitlines()[-1] == "[]"


def test_plan_guide_steps_exist_in_the_guides():
    """Every step number the plan names is a step of that guide in assets/guide_steps.toml."""
    import re
    from wizard.guide.steps import load_guide
    from wizard.registration import needs
    have = {(s.guide, s.section, s.n) for st in load_guide().stages for s in st.steps}
    for guide, table in (("001", needs._G001), ("002", needs._G002), ("004", needs._G004)):
        for label in table.values():
            section = None
            for part in label.split(", "):
                m = re.match(r"^(Azure) steps? ([\d-]+)$", part) or \
                    re.match(r"^([A-Z][\w ]+?) ([\d-]+)(?: \(.*\))?$", part)
                if m:
                    section, span = m.group(1), m.group(2)
                elif section and re.match(r"^[\d-]+$", part):
                    span = part                   # "Azure steps 4-7, 10-12": the same section
                else:
                    continue                      # "Monitor ERP: Test", "-"
                lo, _, hi = span.partition("-")
                for n in range(int(lo), int(hi or lo) + 1):
                    assert (guide, section, n) in have, (guide, section, n, label)


def test_an_edit_made_during_the_registration_stays(sandbox, tmp_path, capsys, monkeypatch):
    """The admin (or `relay add-client`) changes the file while register waits on Graph: register writes
    its tenant, client ID and secret onto the file as it is then, and the edit stays."""
    from wizard.registration.engine import _Run
    _approve_as(sandbox, sample.ADMIN_USER)
    path = _fresh(sandbox, tmp_path, protocol="graph")
    real = _Run.write_config

    def edited_meanwhile(run):
        path.write_text(path.read_text().replace("poll_minutes = 60", "poll_minutes = 15"))
        real(run)
    monkeypatch.setattr(_Run, "write_config", edited_meanwhile)
    code, doc = _register(capsys, path)
    assert code == 0, doc
    cfg = load(path)
    assert cfg.incoming.poll_minutes == 15
    assert cfg.microsoft.client_id == doc["client_id"] != "" and cfg.auth.client_secret[3:6] == "8Q~"
