"""`mailwizard register`: the guides' portal steps done through Microsoft Graph.

    token = admin_signin(cfg, show=print_code)          # device code, an admin
    result = register(cfg, path, token, Options())      # app, SP, permissions, consent, credential,
                                                        # config written, connection test
Each step is an ``Action`` (id, guide step, request, result). Every step first
reads what exists, so a second run changes nothing and says so, and a run that
stopped half-way is completed by the next one. Replication errors of objects
created a moment ago are retried (bounded); the connection test is retried
while a new app or secret is not yet known to the identity platform.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from wizard.diagnosis.catalogue import Diagnosis
from wizard.registration import needs
from wizard.config.clouds import GRAPH_CLI_CLIENT_ID
from wizard.registration.graph import Graph, GraphCallError, key

# A connection test failing with these right after a registration is Entra replicating: retried.
REPLICATING = {"AADSTS700016", "AADSTS7000215", "AADSTS65001", "AADSTS7000218", "AADSTS700027",
               "AADSTS500011", "ews.propagation"}


@dataclass
class Action:
    id: str
    guide_step: str
    request: str
    result: str = "pending"         # created | updated | unchanged | added | written | passed | failed | skipped
    detail: str = ""
    code: str | None = None
    fix: str | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "guide_step": self.guide_step, "request": self.request, "result": self.result,
                "detail": self.detail, "code": self.code, "fix": self.fix}


@dataclass
class Options:
    name: str | None = None
    new_secret: bool = False
    months: int = needs.DEFAULT_SECRET_MONTHS
    admin_client_id: str = GRAPH_CLI_CLIENT_ID
    test: bool = True
    check_wait: float = 120.0       # how long the test is retried while Entra replicates
    check_interval: float = 10.0
    graph_retries: int = 6
    sleep: object = time.sleep
    on_event: object = None         # on_event(kind, text): "action" | "failed" | "wait" | "check"
    tuning: object = None           # wizard.check.engine.Tuning for the test
    today: date | None = None


@dataclass
class Result:
    ok: bool
    actions: list[Action]
    tenant_id: str = ""
    client_id: str = ""
    changed: bool = False
    check: object = None            # wizard.check.engine.Report
    exists: dict = field(default_factory=dict)
    manual: list[dict] = field(default_factory=list)
    consent_url: str | None = None
    diagnosis: Diagnosis | None = None
    config: object = None           # the Config as written to the file (None: not written)

    def to_json(self) -> dict:
        return {"ok": self.ok, "changed": self.changed, "tenant_id": self.tenant_id, "client_id": self.client_id,
                "actions": [a.to_json() for a in self.actions], "exists_now": self.exists,
                "check": self.check.to_json() if self.check is not None else None,
                "beyond_graph": self.manual, "admin_consent_url": self.consent_url}


class StepFailed(Exception):
    def __init__(self, diagnosis: Diagnosis):
        super().__init__(diagnosis.cause)
        self.diagnosis = diagnosis


# -- the registration -----------------------------------------------------------------------------

def register(cfg, path, token, opts: Options | None = None) -> Result:
    """Do the registration for ``cfg`` (saved at ``path``) with the admin's ``token``
    (a TokenResult from the device code sign-in). Never raises for a refused step:
    the Result lists what was done, what exists now and the failed step's diagnosis."""
    opts = opts or Options()
    run = _Run(cfg, path, token, opts)
    try:
        run.go()
    except StepFailed as exc:
        run.fail(exc.diagnosis)
    finally:
        run.graph.close()
    return run.result()


class _Run:
    def __init__(self, cfg, path, token, opts: Options):
        from wizard.config.schema import copy_config
        self.cfg, self.path, self.opts = copy_config(cfg), path, opts
        self.original = cfg
        self.tenant = str(token.claims.get("tid") or cfg.microsoft.tenant_id)
        self.steps = needs.guide_steps(cfg)
        self.plan = {p["id"]: p for p in needs.plan(cfg, name=opts.name, new_secret=opts.new_secret,
                                                      admin_client_id=opts.admin_client_id, months=opts.months)}
        self.graph = Graph(cfg, token.access_token, sleep=opts.sleep, on_wait=self._waiting, retries=opts.graph_retries)
        self.actions: list[Action] = []
        self.exists: dict = {"app": None, "service_principal": None, "app_roles": [], "grants": [],
                             "secret_hint": None, "certificate": None, "config_written": False}
        self.app: dict | None = None
        self.sp: dict | None = None
        self.resources: dict[str, dict] = {}
        self.report = None
        self.diagnosis: Diagnosis | None = None
        self.consent_url: str | None = None
        self.old_key: str | None = None       # --new-secret: the replaced secret's keyId
        self.new_key: str | None = None

    # -- bookkeeping --------------------------------------------------------------------------
    def _waiting(self, what: str, seconds: float, attempt: int) -> None:
        self._event("wait", f"Entra ID is still replicating ({what}); retry {attempt} in {seconds:g} s")

    def _event(self, kind: str, text: str) -> None:
        if self.opts.on_event is not None:
            try:
                self.opts.on_event(kind, text)
            except Exception:
                pass

    def action(self, aid: str) -> Action:
        p = self.plan.get(aid, {"guide_step": self.steps.get(aid, ""), "request": aid})
        a = Action(aid, p["guide_step"], p["request"])
        self.actions.append(a)
        return a

    def done(self, a: Action, result: str, detail: str = "") -> None:
        a.result, a.detail = result, detail
        self._event("action", f"{a.id}: {result}" + (f" ({detail})" if detail else ""))

    def fail(self, d: Diagnosis) -> None:
        self.diagnosis = d
        a = next((x for x in reversed(self.actions) if x.result == "pending"), None)
        if a is None:
            a = self.action("register")
        a.result, a.code, a.fix = "failed", d.code, d.fix
        a.detail = d.cause
        self._event("failed", f"{a.id}: failed ({d.code})")

    def refusal(self, exc: GraphCallError, step: str, resource: str = "") -> StepFailed:
        from wizard.diagnosis.registration import graph_refusal
        d = graph_refusal(step, exc.status, "replication" if exc.replicating else exc.code, exc.message,
                          resource=resource, guide_step=self.steps.get(step))
        if d.code in ("register.graph_roles_denied", "register.consent_denied") and self.app:
            from wizard.diagnosis.registration import admin_consent_url
            self.consent_url = admin_consent_url(self.original.cloud.authority, self.tenant, self.app["appId"])
        return StepFailed(d)

    def result(self) -> Result:
        from wizard.guide.exports import admin_runbook
        ok = self.diagnosis is None and (self.report is None or self.report.ok)
        changed = any(a.result in ("created", "updated", "added", "written", "removed") for a in self.actions)
        manual = _sections(admin_runbook(self.cfg)) if self.app else []
        return Result(ok, self.actions, self.tenant, self.app["appId"] if self.app else "", changed, self.report,
                      self.exists, manual, self.consent_url, self.diagnosis,
                      self.cfg if self.exists["config_written"] else None)

    # -- the steps ---------------------------------------------------------------------------------
    def go(self) -> None:
        self.lookup()
        self.application()
        self.principal()
        self.app_roles()
        self.grants()
        kind = needs.credential_kind(self.cfg)
        if kind == "secret":
            self.secret()
        elif kind == "certificate":
            self.certificate()
        self.write_config()
        if self.opts.test:
            self.test()

    def lookup(self) -> None:
        a = self.action("lookup")
        self.required = []
        wanted = needs.permissions(self.cfg)
        for res_id in dict.fromkeys(p.resource_app_id for p in wanted):
            try:
                sp = self.graph.call("GET", f"/servicePrincipals{key('appId', res_id)}"
                                     "?$select=id,appId,displayName,appRoles,oauth2PermissionScopes")
            except GraphCallError as exc:
                if exc.status == 404:
                    from wizard.diagnosis.catalogue import lookup
                    raise StepFailed(lookup("register.resource_missing", resource=needs.RESOURCES.get(res_id, res_id),
                                            service_message=exc.message)) from None
                raise self.refusal(exc, "lookup") from None
            self.resources[res_id] = sp
            access = []
            for p in (x for x in wanted if x.resource_app_id == res_id):
                pool = sp.get("appRoles") if p.kind == "Application" else sp.get("oauth2PermissionScopes")
                found = next((x for x in pool or [] if x.get("value") == p.name and x.get("isEnabled", True)), None)
                if found is None:
                    from wizard.diagnosis.registration import graph_refusal
                    raise StepFailed(graph_refusal("lookup", 404, "permission.not_found", p.name, resource=p.resource,
                                                   guide_step=self.steps["lookup"]))
                access.append({"id": found["id"], "type": "Role" if p.kind == "Application" else "Scope"})
                self.required.append((p, sp, found))
            self.required_access = getattr(self, "required_access", []) + [{"resourceAppId": res_id,
                                                                              "resourceAccess": access}]
        self.done(a, "done", ", ".join(f"{p.resource} {p.name} ({p.kind})" for p, _, _ in self.required))

    def _desired(self) -> dict:
        return {"displayName": needs.display_name(self.cfg, self.opts.name), "signInAudience": "AzureADMyOrg",
                "isFallbackPublicClient": needs.public_client(self.cfg),
                "publicClient": {"redirectUris": needs.redirect_uris(self.cfg)},
                "requiredResourceAccess": self.required_access}

    def application(self) -> None:
        a = self.action("app")
        desired = self._desired()
        uname = needs.unique_name(desired["displayName"])
        app = None
        try:
            if self.cfg.microsoft.client_id:
                app = self._get_or_none(f"/applications{key('appId', self.cfg.microsoft.client_id)}")
            stale = self.cfg.microsoft.client_id if app is None else ""
            if app is None:
                app = self._get_or_none(f"/applications{key('uniqueName', uname)}")
            if app is None:
                app = self.graph.call("PATCH", f"/applications{key('uniqueName', uname)}", desired,
                                      headers={"Prefer": "create-if-missing"})
                self.app = app
                self.exists["app"] = app["appId"]
                self.done(a, "created", f"{desired['displayName']} ({app['appId']}), uniqueName {uname}" +
                          (f"; the config's client ID {stale} is not an app in this tenant" if stale else ""))
                return
            self.app = app
            self.exists["app"] = app["appId"]
            changes = _differences(app, desired, keep_name=bool(app.get("uniqueName") != uname))
            if not changes:
                self.done(a, "unchanged", f"{app.get('displayName')} ({app['appId']})")
                return
            self.graph.call("PATCH", f"/applications/{app['id']}", changes, retry=True)
            app.update(changes)
            self.done(a, "updated", f"{app['appId']}: " + ", ".join(changes))
        except GraphCallError as exc:
            raise self.refusal(exc, "app") from None

    def _get_or_none(self, path: str):
        try:
            return self.graph.call("GET", path)
        except GraphCallError as exc:
            if exc.status == 404:
                return None
            raise

    def principal(self) -> None:
        a = self.action("sp")
        app_id = self.app["appId"]
        try:
            found = self.graph.call("GET", f"/servicePrincipals?$filter=appId eq '{app_id}'").get("value") or []
            if found:
                self.sp = found[0]
                self.exists["service_principal"] = self.sp["id"]
                self.done(a, "unchanged", self.sp["id"])
                return
            try:
                self.sp = self.graph.call("POST", "/servicePrincipals", {"appId": app_id}, retry=True)
            except GraphCallError as exc:
                if exc.status != 409:
                    raise
                self.sp = self.graph.call("GET", f"/servicePrincipals?$filter=appId eq '{app_id}'",
                                          retry=True)["value"][0]
            self.exists["service_principal"] = self.sp["id"]
            self.done(a, "created", self.sp["id"])
        except GraphCallError as exc:
            raise self.refusal(exc, "sp") from None

    def app_roles(self) -> None:
        roles = [(p, sp, r) for p, sp, r in self.required if p.kind == "Application"]
        if not roles:
            return
        a = self.action("app_roles")
        try:
            have = self.graph.call("GET", f"/servicePrincipals/{self.sp['id']}/appRoleAssignments",
                                   retry=True).get("value") or []
        except GraphCallError as exc:
            raise self.refusal(exc, "app_roles") from None
        held = {(x.get("resourceId"), x.get("appRoleId")) for x in have}
        self.exists["app_roles"] = [f"{p.resource} {p.name}" for p, sp, r in roles if (sp["id"], r["id"]) in held]
        added = []
        for p, sp, r in roles:
            if (sp["id"], r["id"]) in held:
                continue
            try:
                self.graph.call("POST", f"/servicePrincipals/{sp['id']}/appRoleAssignedTo",
                                {"principalId": self.sp["id"], "resourceId": sp["id"], "appRoleId": r["id"]},
                                retry=True)
            except GraphCallError as exc:
                if not (exc.status == 400 and "already exists" in exc.message):
                    raise self.refusal(exc, "app_roles", p.resource) from None
            added.append(f"{p.resource} {p.name}")
            self.exists["app_roles"].append(f"{p.resource} {p.name}")
        self.done(a, "added" if added else "unchanged", ", ".join(added or self.exists["app_roles"]))

    def grants(self) -> None:
        scopes = [(p, sp) for p, sp, _ in self.required if p.kind == "Delegated"]
        if not scopes:
            return
        a = self.action("grants")
        path = f"/oauth2PermissionGrants?$filter=clientId eq '{self.sp['id']}' and consentType eq 'AllPrincipals'"
        try:
            have = self.graph.call("GET", path, retry=True).get("value") or []
            changed = []
            for res_id in dict.fromkeys(sp["id"] for _, sp in scopes):
                names = [p.name for p, sp in scopes if sp["id"] == res_id]
                resource = next(p.resource for p, sp in scopes if sp["id"] == res_id)
                grant = next((g for g in have if g.get("resourceId") == res_id), None)
                if grant is None:
                    try:
                        self.graph.call("POST", "/oauth2PermissionGrants",
                                        {"clientId": self.sp["id"], "consentType": "AllPrincipals",
                                         "resourceId": res_id, "scope": " ".join(names)}, retry=True)
                    except GraphCallError as exc:
                        if exc.status != 409:
                            raise self.refusal(exc, "grants", resource) from None
                        grant = next(g for g in self.graph.call("GET", path)["value"] if g["resourceId"] == res_id)
                    else:
                        changed.append(f"{resource}: {' '.join(names)}")
                if grant is not None:
                    current = str(grant.get("scope") or "").split()
                    missing = [n for n in names if n not in current]
                    if missing:
                        self.graph.call("PATCH", f"/oauth2PermissionGrants/{grant['id']}",
                                        {"scope": " ".join(current + missing)}, retry=True)
                        changed.append(f"{resource}: + {' '.join(missing)}")
                self.exists["grants"].append(f"{resource}: {' '.join(names)}")
        except GraphCallError as exc:
            raise self.refusal(exc, "grants") from None
        self.done(a, "added" if changed else "unchanged", "; ".join(changed or self.exists["grants"]))

    def secret(self) -> None:
        a = self.action("secret")
        from wizard.check.rotate import current_secret
        current = current_secret(self.cfg) or ""
        try:
            full = self.graph.call("GET", f"/applications/{self.app['id']}?$select=id,passwordCredentials", retry=True)
        except GraphCallError as exc:
            raise self.refusal(exc, "secret") from None
        now = datetime.now(timezone.utc)
        ours = next((p for p in full.get("passwordCredentials") or [] if current and p.get("hint") == current[:3]
                     and _when(p.get("endDateTime")) > now), None)
        if ours is not None and not self.opts.new_secret:
            self.exists["secret_hint"] = ours["hint"]
            self.done(a, "unchanged", f"the config's secret ({ours['hint']}..., expires "
                                      f"{str(ours.get('endDateTime'))[:10]}) is on the app")
            return
        if self.cfg.auth.client_secret.startswith("env:"):
            from wizard.diagnosis.catalogue import lookup
            raise StepFailed(lookup("register.secret_env"))
        end = now + timedelta(days=round(self.opts.months * 30.44))
        body = {"passwordCredential": {"displayName": f"mailwizard {now.date().isoformat()}",
                                       "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        try:
            cred = self.graph.call("POST", f"/applications/{self.app['id']}/addPassword", body, retry=True)
        except GraphCallError as exc:
            raise self.refusal(exc, "secret") from None
        if ours is not None:
            self.old_key = ours["keyId"]
        self.new_key = cred.get("keyId")
        self._set_secret(cred["secretText"])
        self.cfg.auth.secret_expires = _when(cred.get("endDateTime") or body["passwordCredential"]["endDateTime"]).date()
        self.exists["secret_hint"] = cred.get("hint")
        self.done(a, "added", f"hint {cred.get('hint')}..., expires {self.cfg.auth.secret_expires.isoformat()}")

    def _set_secret(self, value: str) -> None:
        ref = self.cfg.auth.client_secret
        if ref.startswith("file:"):
            self.secret_file = (ref[5:], value)     # written with the config
        else:
            self.cfg.auth.client_secret = value

    def certificate(self) -> None:
        a = self.action("certificate")
        import base64
        from pathlib import Path
        from wizard.identity.certificates import certificate_info, create_certificate
        key_path = self.cfg.auth.certificate
        made = ""
        if not key_path:
            base = Path(self.path).expanduser()
            key_path = str(base.with_name(base.stem + "-app.pem"))
            if not Path(key_path).exists():
                create_certificate(needs.display_name(self.cfg, self.opts.name)[:64], days=365, key_path=key_path,
                                   cert_path=base.with_name(base.stem + "-app.cer"))
                made = f"key and certificate created in {key_path}; "
        from cryptography.hazmat.primitives import serialization
        from wizard.identity.certificates import load_certificate
        _key, cert, _thumb = load_certificate(key_path)
        info = certificate_info(key_path)
        der = cert.public_bytes(serialization.Encoding.DER)
        self.cfg.auth.certificate, self.cfg.auth.thumbprint = key_path, info.thumbprint
        self.cfg.auth.certificate_expires = info.expires
        self.exists["certificate"] = info.thumbprint
        try:
            full = self.graph.call("GET", f"/applications/{self.app['id']}?$select=id,keyCredentials", retry=True)
            keys = full.get("keyCredentials") or []
            b64_thumb = base64.b64encode(bytes.fromhex(info.thumbprint)).decode()
            if any(str(k.get("customKeyIdentifier") or "") in (info.thumbprint, b64_thumb) for k in keys):
                self.done(a, "unchanged", made + f"thumbprint {info.thumbprint} is on the app")
                return
            if any(not k.get("key") for k in keys):
                from wizard.diagnosis.catalogue import lookup
                raise StepFailed(lookup("register.certificate_keys"))
            new = {"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(der).decode(),
                   "displayName": f"CN={info.common_name or 'mailwizard'}"}
            self.graph.call("PATCH", f"/applications/{self.app['id']}",
                            {"keyCredentials": [{k: v for k, v in x.items() if k in
                                                 ("customKeyIdentifier", "displayName", "endDateTime", "key", "keyId",
                                                  "startDateTime", "type", "usage")} for x in keys] + [new]},
                            retry=True)
        except GraphCallError as exc:
            raise self.refusal(exc, "certificate") from None
        self.done(a, "added", made + f"thumbprint {info.thumbprint}, expires {info.expires.isoformat()}")

    def write_config(self) -> None:
        a = self.action("config")
        m = self.cfg.microsoft
        m.tenant_id, m.client_id = self.tenant, self.app["appId"]
        if self.opts.new_secret and self.old_key:
            self.done(a, "skipped", "kept unchanged until the new secret has passed the test")
            return
        self._save(a)

    def _save(self, a: Action) -> None:
        from wizard.config.changes import save_changes
        from wizard.config.files import write_private
        from wizard.config.schema import to_dict
        if to_dict(self.cfg) == to_dict(self.original) and not getattr(self, "secret_file", None):
            self.exists["config_written"] = True
            self.done(a, "unchanged", str(self.path))
            return
        secret_file = getattr(self, "secret_file", None)
        if secret_file:
            from pathlib import Path
            write_private(Path(secret_file[0]).expanduser(), secret_file[1] + "\n", backup=True)
        save_changes(self.path, self.original, self.cfg)     # an edit made meanwhile stays
        self.exists["config_written"] = True
        self.done(a, "written", f"{self.path}: tenant {self.cfg.microsoft.tenant_id}, client "
                                f"{self.cfg.microsoft.client_id}")

    def test(self) -> None:
        if self.cfg.auth.flow == "device_code":
            a = self.action("check")
            self.done(a, "skipped", "the device code flow signs in as its user: run `mailwizard login`, then "
                                    "`mailwizard check`")
            return
        a = self.action("check")
        from wizard.check.engine import run_check
        start = time.monotonic()
        while True:
            self.report = run_check(self.cfg, tuning=self.opts.tuning)
            if self.report.ok:
                break
            failed = next((s for s in self.report.steps if s.status == "fail"), None)
            code = failed.code if failed else None
            left = self.opts.check_wait - (time.monotonic() - start)
            if code not in REPLICATING or left <= 0:
                break
            wait = min(self.opts.check_interval, max(left, 0.0))
            self._event("check", f"{code}: Entra ID is still replicating the new registration; testing again in "
                                 f"{wait:g} s ({left:.0f} s left)")
            self.opts.sleep(wait)
        if not self.report.ok:
            failed = next((s for s in self.report.steps if s.status == "fail"), None)
            if self.opts.new_secret and self.new_key:
                self._drop_new_secret()
            raise StepFailed(Diagnosis(failed.code or "check.failed" if failed else "check.failed",
                                       f"The connection test failed at {failed.id if failed else '?'}: "
                                       f"{failed.summary if failed else ''}",
                                       (failed.fix if failed and failed.fix else "See `mailwizard check`.") +
                                       " The registration itself is done; see the steps beyond Graph below.",
                                       failed.guide_step if failed else None, failed.screen if failed else None))
        self.done(a, "passed", f"{len(self.report.steps)} steps")
        if self.opts.new_secret and self.old_key:
            self._save(self.action("config"))
            try:
                self.graph.call("POST", f"/applications/{self.app['id']}/removePassword", {"keyId": self.old_key})
                self.done(self.action("old_secret"), "removed", f"keyId {self.old_key}")
            except GraphCallError as exc:
                self.done(self.action("old_secret"), "failed", f"remove it in the portal: {exc.message}")

    def _drop_new_secret(self) -> None:
        try:
            self.graph.call("POST", f"/applications/{self.app['id']}/removePassword", {"keyId": self.new_key})
        except GraphCallError:
            pass


def _when(text) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def _differences(app: dict, desired: dict, *, keep_name: bool) -> dict:
    """The properties to PATCH so ``app`` has what ``desired`` asks (permissions added, never removed)."""
    out = {}
    if not keep_name and app.get("displayName") != desired["displayName"]:
        out["displayName"] = desired["displayName"]
    for name in ("signInAudience", "isFallbackPublicClient"):
        if app.get(name) != desired[name]:
            out[name] = desired[name]
    uris = list((app.get("publicClient") or {}).get("redirectUris") or [])
    want = [u for u in desired["publicClient"]["redirectUris"] if u not in uris]
    if want:
        out["publicClient"] = {"redirectUris": uris + want}
    rra = [dict(r, resourceAccess=list(r.get("resourceAccess") or [])) for r in app.get("requiredResourceAccess") or []]
    changed = False
    for entry in desired["requiredResourceAccess"]:
        have = next((r for r in rra if r.get("resourceAppId") == entry["resourceAppId"]), None)
        if have is None:
            rra.append(entry)
            changed = True
            continue
        for acc in entry["resourceAccess"]:
            if not any(x.get("id") == acc["id"] and x.get("type") == acc["type"] for x in have["resourceAccess"]):
                have["resourceAccess"].append(acc)
                changed = True
    if changed:
        out["requiredResourceAccess"] = rra
    return out


def _sections(runbook: str) -> list[dict]:
    """The admin runbook's numbered sections: [{"title", "commands"}]."""
    out, cur = [], None
    for line in runbook.splitlines():
        if line.startswith("# ---- ") and line.rstrip().endswith("----"):
            title = line.strip("# -").strip()
            cur = None if "manifest" in title.lower() else {"title": title, "commands": []}   # Graph did that
            if cur is not None:
                out.append(cur)
        elif cur is not None and line.strip():
            cur["commands"].append(line)
    return out
