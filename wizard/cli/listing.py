"""`mailwizard list`: the configs on this machine (the default one and each
profile), with tenant, flow, sender, the secret's days left and whether an
unfinished wizard draft exists for it."""

from __future__ import annotations

import argparse
import json
from datetime import date

from wizard.cli.common import EXIT_OK

WARN_DAYS = 30


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("list", parents=[common], help="list the default config and the profiles",
                       description="List the default config and every profile (--profile NAME): path, tenant, flow, "
                                   "sender, the client secret's expiry with days left (warning under 30 days) and "
                                   "whether an unfinished wizard draft exists.")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object: {"configs": [{"name", "path", "active", ...}]}')
    return p


def collect(active_path=None, today: date | None = None, active_label: str = "(--config)") -> list[dict]:
    """One entry per config: the default, each profile, the one chosen by
    --config / $MAILWIZARD_CONFIG when it is elsewhere, and drafts whose config
    was never saved."""
    from pathlib import Path
    from wizard.config.files import default_path, list_profiles, load_lenient
    from wizard.config.drafts import all_drafts, load_draft

    today = today or date.today()
    active = Path(active_path).expanduser().absolute() if active_path else None
    entries: list[tuple[str, Path]] = list(list_profiles())
    seen = {p.absolute() for _, p in entries}
    if active is not None and active not in seen and active.exists():
        entries.insert(0, (active_label, active))
        seen.add(active)
    drafts_only = [d for d in all_drafts() if d.config_path.absolute() not in seen]

    out = []
    for name, path in entries:
        item = {"name": name, "path": str(path), "active": active is not None and path.absolute() == active,
                "exists": True, "tenant_id": None, "flow": None, "sender": None, "secret_expires": None,
                "days_left": None, "expiry_warning": None, "error": None, "draft": None,
                "demo": _is_demo(path)}
        cfg, problems, fatal = load_lenient(path)
        if fatal or cfg is None:
            item["error"] = (fatal or "cannot be read").splitlines()[0]
        else:
            errors = [p for p in problems if not p.warning]
            if errors:
                item["error"] = f"[{errors[0].field}] {errors[0].message}"
            item.update(tenant_id=cfg.microsoft.tenant_id or None, flow=cfg.auth.flow,
                        sender=cfg.outgoing.sender or None)
            when = cfg.auth.secret_expires if cfg.auth.flow == "client_secret" else None
            if cfg.auth.flow == "certificate":
                when = cfg.auth.certificate_expires
            if when is not None:
                days = (when - today).days
                item.update(secret_expires=when.isoformat(), days_left=days)
                if days < 0:
                    item["expiry_warning"] = f"expired {-days} days ago"
                elif days < WARN_DAYS:
                    item["expiry_warning"] = f"expires in {days} days: create the next secret now"
        draft = load_draft(path)
        if draft is not None:
            item["draft"] = _draft_json(draft)
            item["draft"]["resume"] = _resume_command(item)
        out.append(item)
    for d in drafts_only:
        out.append({"name": _name_for(d.config_path, default_path()), "path": str(d.config_path),
                    "active": active is not None and d.config_path.absolute() == active, "exists": False,
                    "tenant_id": d.cfg.microsoft.tenant_id or None, "flow": d.cfg.auth.flow,
                    "sender": d.cfg.outgoing.sender or None, "secret_expires": None, "days_left": None,
                    "expiry_warning": None, "error": None, "draft": _draft_json(d)})
        out[-1]["demo"] = _is_demo(d.config_path)
        out[-1]["draft"]["resume"] = _resume_command(out[-1])
    return out


def _name_for(path, default) -> str:
    if path == default:
        return "default"
    if path == _demo_path():
        return "demo"
    if path.parent == default.parent / "profiles":
        return path.stem
    return "(--config)"


def _draft_json(d) -> dict:
    return {"stage": d.stage, "saved_at": d.saved_at.isoformat(), "secrets_kept": d.secrets_kept,
            "missing_secrets": d.missing_secrets}


def render(items: list[dict], colour: bool) -> str:
    from wizard.cli.output import paint
    if not items:
        return ("No config yet. Run `mailwizard` (the wizard), or `mailwizard init --non-interactive ...`;\n"
                "add --profile NAME to keep several (test, production) side by side.")
    lines = []
    for it in items:
        mark = "*" if it["active"] else " "
        lines.append(f"{mark} {it['name']:<12} {it['path']}" + ("" if it["exists"] else "  (not saved yet)"))
        if it["error"]:
            lines.append(f"    {paint('ERROR', 'fail', colour)}: {it['error']}")
        lines.append(f"    tenant {it['tenant_id'] or '-'}")
        lines.append(f"    flow {it['flow'] or '-'}   sender {it['sender'] or '-'}")
        if it["secret_expires"]:
            text = f"secret expires {it['secret_expires']} ({it['days_left']} days left)"
            if it["expiry_warning"]:
                status = "fail" if it["days_left"] < 0 else "warn"
                text = paint(f"WARNING: secret {it['expiry_warning']} ({it['secret_expires']})", status, colour)
            lines.append("    " + text)
        elif it["flow"] == "client_secret" and it["exists"]:
            lines.append("    secret expiry unknown (add secret_expires to be warned)")
        if it["draft"]:
            dr = it["draft"]
            when = dr["saved_at"][:16].replace("T", " ") + " UTC"
            lines.append(f"    draft: unfinished wizard at the '{dr['stage']}' step, saved {when}")
            lines.append(f"           continue it with `{_resume_command(it)}`")
        else:
            lines.append("    draft: none")
    if any(it["active"] for it in items):
        lines.append("* = the config used with these options (as `check` would)")
    return "\n".join(lines)


def _demo_path():
    from wizard.config.files import default_path
    return default_path().parent / "demo.toml"      # where `mailwizard demo` writes (cli._demo_path)


def _is_demo(path) -> bool:
    """The config of `mailwizard demo` (its own file beside the default config)."""
    from pathlib import Path
    return Path(path).absolute() == _demo_path().absolute()


def _resume_command(item: dict) -> str:
    if item.get("demo"):          # the demo starts a new sandbox and continues its own draft
        return "mailwizard demo"
    if item["name"] == "default":
        return "mailwizard"
    if item["name"].startswith("("):
        return f"mailwizard --config {item['path']}"
    return f"mailwizard --profile {item['name']}"


def run(args) -> int:
    from wizard.config.files import resolve_path
    from wizard.cli.output import use_colour
    import os
    config = getattr(args, "config", None)
    active = resolve_path(config)
    label = "(--config)" if config else "($MAILWIZARD_CONFIG)" if os.environ.get("MAILWIZARD_CONFIG") else "(other)"
    items = collect(active, active_label=label)
    if args.json:
        print(json.dumps({"configs": items}))
    else:
        print(render(items, use_colour()))
    return EXIT_OK

