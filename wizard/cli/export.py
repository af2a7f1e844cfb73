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
}


def add_parser(sub, common) -> None:
    e = sub.add_parser(
        "export", parents=[common], help="print or write the settings sheet, admin runbook or app manifest",
        description="Make a document from the saved config: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ".",
        epilog="exit codes: 0 done, 1 the file could not be written, 2 usage or config error (also "
               "--reveal with a secret's env:/file: reference that cannot be resolved). Secrets are masked in "
               "the sheet unless --reveal; the runbook and manifest never hold one.")
    e.add_argument("kind", choices=list(KINDS), help="which document")
    e.add_argument("-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of printing; - prints")
    e.add_argument("--reveal", action="store_true", help="sheet only: show secrets instead of masking them")


def run(args) -> int:
    from pathlib import Path

    from wizard.cli.common import load_config
    from wizard.config.files import write_private
    from wizard.guide.exports import admin_runbook, manifest_text, settings_sheet

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
