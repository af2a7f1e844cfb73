"""`mailwizard doctor`: compare the app registration with what the config needs.

exit codes: 0 nothing wrong, 1 findings (or the registration could not be
read), 2 usage or config error.
"""

from __future__ import annotations

import argparse
import json
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from wizard.config.clouds import GRAPH_CLI_CLIENT_ID



def add_parser(sub, common) -> None:
    d = sub.add_parser(
        "doctor", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="read the app registration through Graph and compare it with what the config needs",
        description="Read the config's app registration through Microsoft Graph and compare it with what the "
                    "config's flow and protocols need: it exists, single tenant, 'Allow public client flows' vs. "
                    "the flow, the permissions asked for and the admin consent actually granted, the config's "
                    "secret (by its first 3 characters) or certificate and its end date, the other credentials "
                    "and their dates, the redirect URI. Each finding says the cause, the fix and the guide step.",
        epilog="It reads with the app's own token when the app may read app registrations (Application.Read.All), "
               "else after an admin's device-code sign-in (Application.Read.All, Directory.Read.All; the same "
               f"borrowed client ID as `register`, {GRAPH_CLI_CLIENT_ID}, unless --admin-client-id).\n"
               "exit codes: 0 nothing wrong, 1 findings (or the registration could not be read), 2 usage or "
               "config error. --json prints one object: {\"ok\", \"client_id\", \"app\", \"findings\": "
               "[{\"id\", \"severity\", \"cause\", \"fix\", \"guide_step\"}]}")
    d.add_argument("--admin-client-id", metavar="GUID", default=GRAPH_CLI_CLIENT_ID,
                   help="the public client an admin signs in with (default: Microsoft Graph Command Line Tools)")
    d.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from wizard.config.files import load_lenient, resolve_path
    path = resolve_path(args.config)
    cfg, _problems, error = load_lenient(path)
    if cfg is None:
        print(f"mailwizard doctor: cannot read the config {path}: {error or 'missing'}", file=sys.stderr)
        return EXIT_USAGE
    if not cfg.microsoft.client_id or not cfg.microsoft.tenant_id:
        print("mailwizard doctor: the config has no microsoft.tenant_id / client_id to look at: register the app "
              "first (`mailwizard register`)", file=sys.stderr)
        return EXIT_USAGE
    from wizard.identity.msal_common import AuthError
    from wizard.registration.doctor import app_token, diagnose, read_scopes
    from wizard.registration.graph import GraphCallError
    token = app_token(cfg)
    try:
        if token is None:
            from wizard.registration.signin import bootstrap_config, finish_signin
            from wizard.identity import device_code
            boot = bootstrap_config(cfg, args.admin_client_id)
            flow = device_code.start(boot, scopes=read_scopes(cfg), persist=False)
            print("mailwizard doctor: an admin (or Global Reader) signs in once to read the registration.",
                  file=sys.stderr)
            print(device_code.display(flow, qr=sys.stderr.isatty(), who="an admin's account"), file=sys.stderr,
                  flush=True)
            token = finish_signin(boot, flow)
        report = diagnose(cfg, token)
    except AuthError as exc:
        d = exc.diagnosis
        return _failed(args, cfg, d.code, d.cause, d.fix)
    except GraphCallError as exc:
        return _failed(args, cfg, exc.code, f"Microsoft Graph answered {exc.status}: {exc.message}",
                       "Sign in with an account that may read app registrations (Global Reader or an app admin).")
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        app = report.app
        print(f"App {cfg.microsoft.client_id}" + (f" ({app.get('displayName')})" if app else ""))
        marks = {"fail": "✗", "warn": "!", "info": "·"}
        for f in report.findings:
            print(f"{marks[f.severity]} [{f.guide_step or '-'}] {f.cause}")
            print(f"    fix: {f.fix}")
        print("Result: " + ("OK: the registration has what the config needs." if report.ok else
                            f"{sum(f.severity != 'info' for f in report.findings)} finding(s) to fix."))
    return EXIT_OK if report.ok else EXIT_FAIL


def _failed(args, cfg, code, cause, fix) -> int:
    if args.json:
        print(json.dumps({"ok": False, "client_id": cfg.microsoft.client_id, "app": {},
                          "findings": [{"id": "read", "severity": "fail", "cause": f"{code}: {cause}", "fix": fix,
                                        "guide_step": None}]}))
    else:
        print(f"mailwizard doctor: {code}: {cause}\n  fix: {fix}", file=sys.stderr)
    return EXIT_FAIL
