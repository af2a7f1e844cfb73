"""`mailwizard cert create` and `mailwizard login`: the certificate and device code flows.

  mailwizard cert create --days N --out DIR [--name CN] [--save]
      key pair + self-signed certificate; the key (mode 0600) stays here, the
      .cer is uploaded to the app. exit 0 created, 1 could not write, 2 usage.
  mailwizard cert show FILE
      thumbprints and expiry of a key file or .cer. exit 0, 1 unreadable.
  mailwizard login [--config PATH] [--no-qr]
      the device code sign-in in the terminal (URL + code large, QR code,
      countdown); the sign-in is saved for `check`, `send`, `poll`.
      exit 0 signed in, 1 failed (expired, declined, blocked), 2 usage/config.

Only argparse at import time.
"""

from __future__ import annotations

import argparse
import re
import sys

from wizard.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE


def _days(text: str) -> int:
    from wizard.identity.certificates import MAX_DAYS, MIN_DAYS
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not MIN_DAYS <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"give {MIN_DAYS}-{MAX_DAYS} days (e.g. 730 for two years)")
    return value


def add_parser(sub, common) -> None:
    c = sub.add_parser("cert", parents=[common], help="create the key and certificate for the certificate flow",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="The certificate flow (recommended where the system supports it): the app "
                                   "signs in with a private key that never leaves this computer; only the "
                                   "public certificate (.cer) is uploaded to the app registration.",
                       epilog="exit codes: 0 done, 1 could not write/read the files, 2 usage or config error.")
    csub = c.add_subparsers(dest="cert_command", metavar="ACTION")
    cc = csub.add_parser("create", parents=[common], help="create a key (0600) and a self-signed certificate",
                         description="Create an RSA 2048 key and a self-signed certificate valid --days days. "
                                     "The key file (mode 0600) is what auth.certificate points at; upload the "
                                     ".cer in the portal: App registrations > your app > Certificates & secrets > "
                                     "Certificates > Upload certificate.")
    cc.add_argument("--days", type=_days, default=730, metavar="N", help="validity in days (default 730)")
    cc.add_argument("--out", metavar="DIR", required=True, help="folder for the key and the .cer")
    cc.add_argument("--name", metavar="CN", help="the certificate's name (default: mailwizard <host name>)")
    cc.add_argument("--save", action="store_true",
                    help="also switch the config (--config/--profile or the default) to the certificate flow "
                         "with this key and thumbprint")
    cs = csub.add_parser("show", help="thumbprints and expiry of a key file or .cer",
                         description="Print the SHA-1 thumbprint (as the portal shows it), the SHA-256 "
                                     "thumbprint and the expiry date of a certificate file.")
    cs.add_argument("file", metavar="FILE")

    lg = sub.add_parser("login", parents=[common], help="sign in once for the device code flow (MFA works)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Device code sign-in for a headless server: shows a web address and a code; "
                                    "open the address on any device (a phone is fine), type the code and sign "
                                    "in there (MFA included). The sign-in is saved (readable only by this user) "
                                    "and renewed by itself, so `check`, `send` and `poll` work afterwards.",
                        epilog="exit codes: 0 signed in, 1 sign-in failed (expired, declined, blocked), "
                               "2 usage or config error.")
    lg.add_argument("--no-qr", action="store_true", help="do not print the QR code")
    lg.add_argument("--status", action="store_true", help="only say whether a sign-in is saved, and for whom")
    lg.add_argument("--logout", action="store_true", help="delete the saved sign-in on this computer")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "app"


def run(args) -> int:
    if args.command == "login":
        return run_login(args)
    if getattr(args, "cert_command", None) == "create":
        return _create(args)
    if getattr(args, "cert_command", None) == "show":
        return _show(args)
    print("mailwizard cert: give an action: create or show (see `mailwizard cert --help`)", file=sys.stderr)
    return EXIT_USAGE


def _create(args) -> int:
    import socket
    from pathlib import Path
    from wizard.identity.certificates import PORTAL_PATH, create_certificate
    name = args.name or f"mailwizard {socket.gethostname()}"
    out = Path(args.out).expanduser().resolve()
    key_path, cer_path = out / f"mailwizard-{_slug(name)}-key.pem", out / f"mailwizard-{_slug(name)}.cer"
    try:
        info = create_certificate(name, days=args.days, key_path=key_path, cert_path=cer_path)
    except ValueError as exc:
        print(f"mailwizard cert: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"mailwizard cert: cannot write the files: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"Created a certificate \"{name}\", valid until {info.expires.isoformat()} ({args.days} days).\n")
    print(f"  private key (keep here, mode 0600): {key_path}")
    print(f"  certificate to upload:              {cer_path}\n")
    print(f"Upload {cer_path.name} in the portal:\n  {PORTAL_PATH}")
    print(f"The portal then lists it with this Thumbprint (check that they match):\n  {info.thumbprint}\n")
    print("Config ([auth] section):")
    print('  flow = "certificate"')
    print(f'  certificate = "{key_path}"')
    print(f'  thumbprint = "{info.thumbprint}"')
    print(f"  certificate_expires = {info.expires.isoformat()}")
    print("\nThe key never leaves this computer: copy it only to the machine that runs the system, and make a "
          "new certificate before the expiry date.")
    if args.save:
        return _save(args, info, key_path)
    return EXIT_OK


def _save(args, info, key_path) -> int:
    from wizard.config.schema import ConfigError
    from wizard.config.files import resolve_path, update
    path = resolve_path(args.config)

    def use_certificate(cfg) -> None:
        a = cfg.auth
        a.flow, a.certificate, a.thumbprint, a.certificate_expires = "certificate", str(key_path), info.thumbprint, \
            info.expires
        a.client_secret, a.secret_expires, a.username, a.password = "", None, "", ""   # one method at a time
    try:
        update(path, use_certificate, strict=False)     # the file as it is now, under its lock
    except ConfigError as exc:
        print(f"\nmailwizard cert: the config was not changed: {exc.render()}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"\nmailwizard cert: cannot write {path}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"\nSaved {path} with flow = certificate. After the upload run `mailwizard check`.")
    return EXIT_OK


def _show(args) -> int:
    from wizard.identity.certificates import certificate_info
    try:
        info = certificate_info(args.file)
    except (OSError, ValueError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else
                  "no certificate in it (expected a PEM file with a CERTIFICATE block, or a .cer in DER)")
        print(f"mailwizard cert: cannot read a certificate from {args.file}: {reason}", file=sys.stderr)
        return EXIT_FAIL
    print(f"subject:            {info.common_name}")
    print(f"thumbprint (SHA-1): {info.thumbprint}   <- the portal's Thumbprint column, auth.thumbprint")
    print(f"SHA-256:            {info.thumbprint_sha256}")
    print(f"valid until:        {info.expires.isoformat()}")
    return EXIT_OK


# -- mailwizard login --------------------------------------------------------------------------------

def run_login(args) -> int:
    from wizard.cli.common import load_config
    path, cfg = load_config(args, "login", strict=False)
    if cfg is None:
        return EXIT_USAGE
    if cfg.auth.flow != "device_code":
        print(f"mailwizard login: {path} uses flow = \"{cfg.auth.flow}\"; `login` is for the device code flow "
              "(set flow = \"device_code\" in [auth], or run `mailwizard` to choose it).", file=sys.stderr)
        return EXIT_USAGE
    from wizard.identity import device_code
    if args.logout:
        gone = device_code.forget(cfg)
        print("Signed out: the saved sign-in was deleted." if gone else "No saved sign-in to delete.")
        return EXIT_OK
    if args.status:
        who = device_code.signed_in(cfg)
        print(f"Signed in as {who} (saved in {device_code.cache_path(cfg)})." if who
              else "Not signed in on this computer: run `mailwizard login`.")
        return EXIT_OK if who else EXIT_FAIL
    return login_terminal(cfg, qr=not args.no_qr)


def login_terminal(cfg, *, qr: bool = True, out=None, sleep=None, clock=None, cancel=None) -> int:
    """The device code sign-in on a terminal; returns the exit code."""
    import time
    from wizard.identity.signin import AuthError
    from wizard.identity import device_code
    out = out or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty()
    last = {"printed": None}

    def show(flow):
        print(device_code.display(flow, qr=qr), file=out)
        print(f"\nWaiting for the sign-in (the code expires in {flow.expires_in // 60} min; Ctrl-C stops).",
              file=out, flush=True)

    def tick(left: int):
        text = f"  {left // 60}:{left % 60:02d} left to sign in"
        if tty:
            print(f"{text:<40}", end="\r", file=out, flush=True)
        elif last["printed"] is None or last["printed"] - left >= 60:   # a log line a minute when not a tty
            print(text, file=out, flush=True)
            last["printed"] = left

    try:
        result = device_code.login(cfg, show=show, on_tick=tick, cancel=cancel, sleep=sleep,
                                   clock=clock or time.monotonic)
    except AuthError as exc:
        d = exc.diagnosis
        if tty:
            print(" " * 40, end="\r", file=out)
        print(f"\nSign-in failed: {d.code}\n  {d.cause}\n  Fix: {d.fix}", file=out, flush=True)
        return EXIT_FAIL
    if tty:
        print(" " * 40, end="\r", file=out)
    who = result.claims.get("upn") or result.claims.get("unique_name") or "?"
    print(f"\nSigned in as {who}. The sign-in is saved in {device_code.cache_path(cfg)} (readable only by "
          "you) and renewed by itself; `mailwizard check` uses it.", file=out)
    if cfg.auth.username and who.lower() != cfg.auth.username.lower():
        print(f"Note: the config's auth.username is {cfg.auth.username}, but the sign-in was done as {who}.",
              file=out)
    return EXIT_OK
