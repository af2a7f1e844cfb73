"""What several `mailwizard` commands share. Only the standard library at import
(the heavy modules load inside the functions), so `--help` stays fast."""

from __future__ import annotations

import sys

# The exit codes of every command: a public contract, scripts rely on them.
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def load_config(args, command: str, *, strict: bool):
    """(path, config) for ``--config`` (or the default config); (path, None) once
    ``mailwizard COMMAND: config error`` and what is wrong have gone to stderr,
    for the command to exit 2."""
    from wizard.config.schema import ConfigError
    from wizard.config.files import load, resolve_path
    path = resolve_path(args.config)
    try:
        return path, load(path, strict=strict)
    except ConfigError as exc:
        print(f"mailwizard {command}: config error\n{exc.render()}", file=sys.stderr)
        return path, None


def sign_in_prompt():
    """Device code flow: show the sign-in instructions when a person is at the terminal."""
    if not sys.stdin.isatty():
        return None
    return lambda message: print(message, file=sys.stderr, flush=True)
