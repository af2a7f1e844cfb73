"""`mailwizard discover DOMAIN`: find a tenant's ID, cloud and region without signing in.

exit codes: 0 found, 1 unknown domain/tenant or the identity platform could
not be reached, 2 usage or config error.
"""

from __future__ import annotations

import json
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE


def add_parser(sub, common) -> None:
    d = sub.add_parser(
        "discover", parents=[common], help="find a tenant's ID and cloud from its domain (no sign-in)",
        description="Ask the identity platform's public openid-configuration for DOMAIN (or a tenant ID) and "
                    "print the Directory (tenant) ID, the cloud and the region. Without --cloud the clouds are "
                    "tried in turn. A config given with --config (or the default one, if it exists) supplies "
                    "[endpoints] authority and ca_bundle.",
        epilog="exit codes: 0 found, 1 unknown or unreachable, 2 usage or config error.")
    d.add_argument("domain", metavar="DOMAIN", help="a verified domain such as contoso.com, or a tenant ID")
    d.add_argument("--cloud", choices=["global", "usgov", "usgov-dod", "china"], help="ask only this cloud")
    d.add_argument("--json", action="store_true", help="print one JSON object")


def _settings(args):
    """(authority, ca_bundle) from the config, if there is one to read."""
    from wizard.config.files import load, resolve_path
    path = resolve_path(args.config)
    if not args.config and not path.exists():
        return None, None
    cfg = load(path, strict=False)          # ConfigError: a usage error for the caller
    return (cfg.endpoints.authority or None), cfg.ca_bundle


def run(args) -> int:
    from wizard.config.schema import ConfigError
    from wizard.identity.discovery import DiscoveryError, discover_tenant

    try:
        authority, ca_bundle = _settings(args)
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"ok": False, "code": "config.invalid", "message": exc.render()}))
        else:
            print(f"mailwizard discover: config error\n{exc.render()}", file=sys.stderr)
        return EXIT_USAGE
    try:
        info = discover_tenant(args.domain, cloud=args.cloud, authority=authority, ca_bundle=ca_bundle)
    except DiscoveryError as exc:
        if args.json:
            print(json.dumps(exc.to_json()))
        else:
            lines = [f"mailwizard discover: {exc.message}"]
            if exc.fix and exc.fix not in exc.message:
                lines.append(f"  fix: {exc.fix}")
            if exc.code == "network":
                lines.append(f"  tried: {', '.join(exc.tried)}")
            print("\n".join(lines), file=sys.stderr)
        return EXIT_USAGE if exc.code == "invalid" else EXIT_FAIL
    if args.json:
        print(json.dumps(info.to_json()))
        return EXIT_OK
    from wizard.config.clouds import CLOUDS
    from wizard.cli.output import group4
    label = CLOUDS[info.cloud].label if info.cloud in CLOUDS else (info.cloud_instance_name or "unknown")
    rows = [("domain", info.query), ("Directory (tenant) ID", info.tenant_id),
            ("read aloud", group4(info.tenant_id)),
            ("cloud", f"{info.cloud or '?'} ({label})"),
            ("region", info.region_scope or "?") if not info.region_sub_scope
            else ("region", f"{info.region_scope} / {info.region_sub_scope}"),
            ("issuer", info.issuer)]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    if info.cloud and info.cloud != "global":
        print(f"Set cloud = \"{info.cloud}\" under [microsoft] in the config.")
    return EXIT_OK
