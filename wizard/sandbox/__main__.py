"""`python -m wizard.sandbox`: serve the sample tenant until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from wizard.sandbox import sample
from wizard.sandbox.server import Sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wizard.sandbox",
                                     description="Serve the sample sandbox tenant on https://127.0.0.1.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each response")
    args = parser.parse_args(argv)
    from wizard.sandbox.cleanup import stop_on_signals, watch
    stop = stop_on_signals()     # Ctrl-C, SIGTERM, SIGHUP end the wait below, never mid-startup
    watch()                      # the temp files go even if this process is killed
    with Sandbox(latency=args.latency) as sb:
        lines = [
            f"base URL      {sb.base_url}  (identity platform, EWS, Graph)",
            f"SMTP          {sb.host}:{sb.smtp_port}  (STARTTLS, AUTH XOAUTH2)",
            f"IMAP          {sb.host}:{sb.imap_port}  (TLS, AUTHENTICATE XOAUTH2)",
            f"CA bundle     {sb.ca_path}",
            f"tenant ID     {sample.TENANT_ID}  (domain {sample.DOMAIN})",
            f"client ID     {sample.SECRET_APP_ID}  (client secret flow)",
            f"client ID     {sample.PASSWORD_APP_ID}  (user name/password flow, user {sample.SERVICE_USER})",
            f"client ID     {sample.NO_CONSENT_APP_ID}  (admin consent missing)",
            f"sender        {sample.SENDER}",
            f"recipient     {sample.RECIPIENT}",
            f"incoming      {', '.join(sample.INCOMING)}",
            "secrets and passwords: see wizard/sandbox/sample.py (or use `mailwizard demo`)",
            "Ctrl-C stops the sandbox.",
        ]
        print("\n".join(lines), flush=True)
        while not stop.wait(0.5):
            pass
    print("sandbox stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
