"""`mailwizard export {sheet,runbook,manifest}`: documents from the saved config.

exit codes: 0 printed or written, 1 the file could not be written, 2 usage or
config error (also: --reveal and a secret's env:/file: reference that cannot be
resolved). Files are written with mode 0600 (config_io.write_private); -o - prints.
"""

from __future__ import annotations

import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE
KINDS = {
    "sheet": "the settings sheet for the consuming system (Monitor G5 fields, Efecte ESM platform settings)",
    "runbook": "the Exchange Online PowerShell for the tenant admin, with the real client ID (no secret)",
    "manifest": "the app manifest's requiredResourceAccess for this flow and protocol",
    "systemd": "systemd units: the relay as a service and a daily `check --textfile` (.service + .timer)",
}


def add_parser(sub, common) -> None:
    e = sub.add_parser(
        "export", parents=[common], help="print or write the settings sheet, admin runbook or app manifest",
        description="Make a document from the saved config: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ".",
        epilog="exit codes: 0 done, 1 the file could not be written, 2 usage or config error (also "
               "--reveal with a secret's env:/file: reference that cannot be resolved). Secrets are masked in "
               "the sheet unless --reveal; the runbook and manifest never hold one.")
    e.add_argument("kind", choices=list(KINDS), help="which document")
    e.add_argument("-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of printing; - prints "
                                                          "(systemd: a folder DIR, e.g. /etc/systemd/system)")
    e.add_argument("--reveal", action="store_true", help="sheet only: show secrets instead of masking them")
    e.add_argument("--textfile", metavar="PATH", default=None,
                   help="systemd only: where the daily check writes its metrics (default "
                        "/var/lib/node_exporter/textfile_collector/mailwizard.prom, with --profile NAME "
                        "mailwizard-NAME.prom: one file per profile)")


def run(args) -> int:
    from pathlib import Path

    from wizard.cli.common import load_config
    from wizard.config.files import write_private
    from wizard.guide.exports import admin_runbook, manifest_text, settings_sheet

    if args.kind == "systemd":
        return _systemd(args)
    if args.textfile is not None:
        print("mailwizard export: --textfile applies to systemd only", file=sys.stderr)
        return EXIT_USAGE
    if args.reveal and args.kind != "sheet":
        print("mailwizard export: --reveal applies to the sheet only (the runbook and manifest hold no secret)",
              file=sys.stderr)
        return EXIT_USAGE
    _path, cfg = load_config(args, "export", strict=False)
    if cfg is None:
        return EXIT_USAGE
    if args.kind == "sheet":
        from wizard.config.schema import ConfigError
        try:
            text = settings_sheet(cfg, reveal=args.reveal)
        except ConfigError as exc:      # --reveal: a secret's env:/file: reference cannot be resolved
            print(f"mailwizard export: --reveal cannot show a secret: {exc.render()}", file=sys.stderr)
            return EXIT_USAGE
    elif args.kind == "runbook":
        text = admin_runbook(cfg)
    else:
        text = manifest_text(cfg)
    if not args.output or args.output == "-":      # "-": standard output, as everywhere
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.output).expanduser()
    try:
        write_private(out, text, backup=out.exists())
    except OSError as exc:
        print(f"mailwizard export: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"wrote {out}" + (" (holds secrets: keep it private)" if args.reveal else ""))
    return EXIT_OK


def _systemd(args) -> int:
    """The units for this config (its path only: no secret), printed or written to the folder -o DIR."""
    import os
    from pathlib import Path

    from wizard.config.files import ENV_CONFIG, ENV_PROFILE, resolve_path, write_private
    from wizard.monitor.systemd import default_textfile, units

    if args.reveal:
        print("mailwizard export: --reveal applies to the sheet only (units hold no secret)", file=sys.stderr)
        return EXIT_USAGE
    config = resolve_path(args.config)
    if not config.is_file():
        print(f"mailwizard export: config {config} does not exist: the units run mailwizard with it "
              "(create it with `mailwizard` or `mailwizard init`, or give --config)", file=sys.stderr)
        return EXIT_USAGE
    profile = getattr(args, "profile", None)
    if not profile and not args.config and not os.environ.get(ENV_CONFIG):      # $MAILWIZARD_PROFILE chose it
        profile = os.environ.get(ENV_PROFILE) or None
    textfile = args.textfile or default_textfile(profile)      # one file per profile: each run replaces its file
    if not textfile.endswith(".prom"):
        print(f"mailwizard export: --textfile {textfile}: node_exporter reads only files ending in .prom",
              file=sys.stderr)
        return EXIT_USAGE
    files = units(config, profile=profile, textfile=textfile)
    if not args.output or args.output == "-":
        for name, text in files.items():
            sys.stdout.write(f"# {name}\n{text}\n")
        return EXIT_OK
    folder = Path(args.output).expanduser()
    if folder.exists() and not folder.is_dir():
        print(f"mailwizard export: -o {folder}: for systemd give a folder (e.g. /etc/systemd/system)",
              file=sys.stderr)
        return EXIT_USAGE
    for name, text in files.items():
        try:
            write_private(folder / name, text, mode=0o644)      # systemd reads units as any user; no secret in them
        except OSError as exc:
            print(f"mailwizard export: cannot write {folder / name}: {getattr(exc, 'strerror', None) or exc}",
                  file=sys.stderr)
            return EXIT_FAIL
        print(f"wrote {folder / name}")
    base = next(iter(files)).rsplit("-relay.service", 1)[0]
    print(f"then: systemctl daemon-reload && systemctl enable --now {base}-check.timer "
          f"(and {base}-relay.service once `mailwizard relay` is set up)")
    return EXIT_OK
