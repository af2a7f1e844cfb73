"""`mailwizard report`: one text file for support, with no secret in it."""

from __future__ import annotations

import sys
from pathlib import Path

from wizard.cli.common import EXIT_OK, EXIT_USAGE


def run(args) -> int:
    from wizard.config.files import load_lenient, resolve_path, write_private
    from wizard.cli.support import build_bundle

    path = resolve_path(args.config)
    cfg, _problems, fatal = load_lenient(path)
    if cfg is None and fatal is None:
        fatal = "file not found"
    text = build_bundle(cfg, str(path), fatal)
    if args.output and args.output != "-":
        out = Path(args.output).expanduser()
        try:
            write_private(out, text)
        except OSError as exc:
            print(f"mailwizard report: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {out} (no secrets in it; mode 0600). Send it to support.")
    else:
        sys.stdout.write(text)
    return EXIT_OK
