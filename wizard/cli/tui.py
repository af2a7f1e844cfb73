"""`mailwizard [wizard]` and `mailwizard demo`: open the Textual wizard (screens/),
on the user's config or on the built-in demo tenant."""

from __future__ import annotations

import sys

from wizard.cli.common import EXIT_USAGE


def _no_gc_until_first_screen() -> None:
    """Start-up builds a few hundred thousand objects (Textual, the first stage)
    that all live on: collecting garbage among them only costs time (about 5% of
    the start, and a full collection of 25-50 ms just after the first paint).
    The wizard switches collection back on once the first screen is painted,
    with those objects frozen out of its reach (WizardApp.freeze_startup_objects)."""
    import gc
    gc.disable()


def run(args) -> int:
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        print("mailwizard: the wizard needs an interactive terminal. For scripts use `mailwizard check`.",
              file=sys.stderr)
        return EXIT_USAGE
    _no_gc_until_first_screen()
    from screens.app import make_app
    app = make_app(args.config)      # the path is resolved when the app runs
    app.run()
    return app.return_code or 0


def _demo_path(args):
    if args.config:
        from pathlib import Path
        return Path(args.config).expanduser()
    from platformdirs import user_config_path
    return user_config_path("mailwizard", appauthor=False) / "demo.toml"


def run_demo(args) -> int:
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        print("mailwizard: the demo needs an interactive terminal.", file=sys.stderr)
        return EXIT_USAGE
    _no_gc_until_first_screen()
    from wizard.sandbox import Sandbox
    from wizard.sandbox.cleanup import watch
    from screens.app import make_app
    watch()     # a closed terminal ends the wizard at once: its temp files (CA, keys) still go
    with Sandbox(latency=args.latency) as sb:
        from wizard.sandbox.sample import ADMIN_USER, BOOTSTRAP_APP_ID
        sb.device.auto_approve, sb.device.auto_approve_client = (ADMIN_USER, 2.0), BOOTSTRAP_APP_ID  # stage 2's w
        app = make_app(_demo_path(args), demo=sb)
        app.run()
    return app.return_code or 0
