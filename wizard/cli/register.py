"""`mailwizard register`: register the app through Microsoft Graph after one
admin device-code sign-in, write the IDs and the secret (or certificate) into
the config, and test it.

exit codes: 0 registered and tested; 1 a step failed (what was done is
listed; running again completes it); 2 usage or config error.
"""

from __future__ import annotations

import argparse
import json
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from wizard.config.clouds import GRAPH_CLI_CLIENT_ID

EPILOG = f"""\
The admin signs in once with the device code flow (a web address and a code, on
any device: it works over SSH) and consents to Application.ReadWrite.All,
AppRoleAssignment.ReadWrite.All and DelegatedPermissionGrant.ReadWrite.All.

Borrowed client ID: by default the sign-in uses Microsoft's own public client
"Microsoft Graph Command Line Tools" ({GRAPH_CLI_CLIENT_ID}), the one
Connect-MgGraph uses, because a new tenant has no app of its own yet. Microsoft
tolerates this but does not support it for third-party tools: the consent is
given to Microsoft's app (it stays under Enterprise applications until an admin
removes it), the tenant may block or restrict that app (AADSTS50105,
AADSTS7000112), and Microsoft may change it without notice. With
--admin-client-id give your organisation's own public client app instead
('Allow public client flows' = Yes, those three delegated permissions consented).

Who may do it: a Global Administrator or Privileged Role Administrator may do
everything; a Cloud Application Administrator everything except granting
Microsoft Graph application permissions (client secret or certificate over
Graph); anyone else gets the admin-consent URL and the runbook to send on.

exit codes: 0 registered and tested, 1 a step failed (the steps done are
listed, what exists now too; running again completes the rest), 2 usage or
config error. --json prints one object:
{{"ok", "changed", "tenant_id", "client_id", "actions": [{{"id", "guide_step",
"request", "result", "detail", "code", "fix"}}], "exists_now", "check",
"beyond_graph": [{{"title", "commands"}}], "admin_consent_url"}}
"""


def _months(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 24:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of months from 1 to 24 (the portal's longest)")
    return value


def add_parser(sub, common) -> None:
    r = sub.add_parser(
        "register", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="register the app through Microsoft Graph (one admin sign-in), write the config, test it",
        description="Do the guide's Azure portal steps through Microsoft Graph for the config's system, flow and "
                    "protocols: the app registration (single tenant, public client setting, redirect URI, "
                    "permissions), its service principal, admin consent, and a client secret or the certificate. "
                    "Tenant ID, client ID and the secret go straight into the config (0600); then the connection "
                    "test runs. A second run changes nothing and says so.",
        epilog=EPILOG)
    r.add_argument("--admin-client-id", metavar="GUID", default=GRAPH_CLI_CLIENT_ID,
                   help="the public client to sign the admin in with (default: Microsoft Graph Command Line Tools)")
    r.add_argument("--app-name", metavar="NAME", help="the app's display name (default from the system and flow)")
    r.add_argument("--secret-months", type=_months, default=12, metavar="N",
                   help="a new client secret's lifetime in months, 1-24 (default 12)")
    r.add_argument("--new-secret", action="store_true",
                   help="add a new client secret even when the config's one is on the app; the old one is removed "
                        "only after the new one has passed the test")
    r.add_argument("--dry-run", action="store_true", help="print the plan (each Graph call and its guide step); "
                                                          "no sign-in, nothing changed")
    r.add_argument("--no-test", action="store_true", help="do not run the connection test afterwards")
    r.add_argument("--json", action="store_true", help="print one JSON object instead of the steps")


def _show_code(flow) -> None:
    from wizard.identity.device_code import display
    text = display(flow, qr=sys.stderr.isatty(), who="a tenant admin's account")
    print("mailwizard register: an admin signs in once (device code) to let mailwizard do the portal steps.",
          file=sys.stderr)
    print(text, file=sys.stderr, flush=True)


def _tick(seconds_left: int) -> None:
    """The sign-in countdown on one line of a terminal."""
    if sys.stderr.isatty():
        m, s = divmod(seconds_left, 60)
        print(f"\r  waiting for the admin's sign-in: {m}:{s:02d} left ", end="", file=sys.stderr, flush=True)


def run(args) -> int:
    from wizard.config.files import load_lenient, resolve_path
    from wizard.registration import needs
    path = resolve_path(args.config)
    cfg, problems, error = load_lenient(path)
    if cfg is None:
        message = f"cannot read the config {path}: {error or 'missing'}"
        if args.json:
            print(json.dumps({"ok": False, "changed": False, "error": message, "actions": []}))
        print(f"mailwizard register: {message}", file=sys.stderr)
        return EXIT_USAGE
    import re
    if not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", args.admin_client_id or ""):
        print(f"mailwizard register: --admin-client-id {args.admin_client_id!r} is not an application (client) ID "
              "(a GUID like 14d82eec-204b-4c2f-b7e8-296a70dab67e)", file=sys.stderr)
        return EXIT_USAGE
    if args.new_secret and cfg.auth.flow != "client_secret":
        print(f"mailwizard register: --new-secret is for the client secret flow; this config's flow is "
              f"{cfg.auth.flow}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        steps = needs.plan(cfg, name=args.app_name, new_secret=args.new_secret,
                           admin_client_id=args.admin_client_id, months=args.secret_months)
        if args.json:
            print(json.dumps({"ok": True, "dry_run": True, "actions": steps}, indent=2))
        else:
            print(f"mailwizard register --dry-run: the plan for {path} ({cfg.system}, {cfg.auth.flow}, "
                  f"{' + '.join(needs.protocols(cfg))}); nothing is signed in or changed.")
            for i, s in enumerate(steps, 1):
                print(f"{i:>2}. [{s['guide_step']}] {s['id']}: {s['request']}")
        return EXIT_OK
    return _register(args, cfg, path)


def _register(args, cfg, path) -> int:
    from wizard.identity.msal_common import AuthError
    from wizard.registration.engine import Options, register
    from wizard.registration.signin import finish_signin, start_signin
    quiet = args.json

    def event(kind, text):
        if not quiet:
            mark = {"action": "  ✓", "failed": "  ✗", "wait": "  …", "check": "  …"}.get(kind, "  ")
            print(f"{mark} {text}", file=sys.stderr, flush=True)

    try:
        boot, flow = start_signin(cfg, args.admin_client_id)
        _show_code(flow)
        token = finish_signin(boot, flow, on_tick=None if quiet else _tick)
    except AuthError as exc:
        d = exc.diagnosis
        if args.json:
            print(json.dumps({"ok": False, "changed": False, "tenant_id": cfg.microsoft.tenant_id, "client_id": "",
                              "actions": [{"id": "signin", "guide_step": "Azure step 1", "request": "device code sign-in",
                                           "result": "failed", "detail": d.cause, "code": d.code, "fix": d.fix}],
                              "exists_now": {}, "check": None, "beyond_graph": [], "admin_consent_url": None}))
        else:
            print(f"mailwizard register: the admin sign-in failed: {d.code}\n  {d.cause}\n  fix: {d.fix}",
                  file=sys.stderr)
        return EXIT_FAIL
    if sys.stderr.isatty() and not quiet:
        print(file=sys.stderr)
    who = token.claims.get("upn") or token.claims.get("preferred_username") or "?"
    event("action", f"signed in as {who} (tenant {token.claims.get('tid')})")
    opts = Options(name=args.app_name, new_secret=args.new_secret, months=args.secret_months,
                   admin_client_id=args.admin_client_id, test=not args.no_test, on_event=event)
    result = register(cfg, path, token, opts)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print(result, path)
    return EXIT_OK if result.ok else EXIT_FAIL


def _print(result, path) -> None:
    print()
    for a in result.actions:
        print(f"[{a.guide_step}] {a.id}: {a.result}" + (f" - {a.detail}" if a.detail else ""))
        if a.fix:
            print(f"    fix: {a.fix}")
    if result.ok:
        print("\nNothing changed: the registration already had everything the config needs." if not result.changed
              else f"\nRegistered and tested: tenant {result.tenant_id}, client {result.client_id}, saved to {path}.")
    else:
        print("\nNot finished. What exists now: " + json.dumps(result.exists))
        print("Run `mailwizard register` again to complete it once the cause above is fixed.")
    if result.consent_url:
        print(f"\nAdmin-consent URL to send to an admin: {result.consent_url}")
    if result.manual:
        print("\nBeyond Microsoft Graph's reach (an Exchange admin runs these; `mailwizard export runbook` "
              "writes them all):")
        for sec in result.manual:
            print(f"  -- {sec['title']}")
            for line in sec["commands"]:
                print(f"     {line}")
