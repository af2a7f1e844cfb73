"""Real mail servers for the interop tests: a private Dovecot (IMAP over TLS,
submission with STARTTLS, LMTP) and a private Postfix, started under a temp
directory on free ports of 127.0.0.1 with TLS from the sandbox's throwaway CA,
and stopped again at the end (no system service is touched).

Dovecot checks the sandbox's OAuth tokens itself: ``passdb oauth2`` with
``introspection_mode = local`` and the sandbox's JWT signing key (signature,
expiry, issuer; for a user token the ``upn`` claim must equal the XOAUTH2 user;
an app token must be an app token of the sandbox tenant). Mail submitted to
Dovecot's submission service is relayed to Postfix; Postfix (authenticated
submission through Dovecot's SASL, and the relay port) hands mail for the
tenant's domain to Dovecot over LMTP; anything else is refused
(``554 5.7.1 Relay access denied``).

Install the packages with ``.ci/install-mail-servers`` (Debian, as root).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

INSTALL_HINT = ("real-server interop tests need Dovecot and Postfix: run `sudo .ci/install-mail-servers` "
                "(Debian: dovecot-imapd dovecot-submissiond dovecot-lmtpd postfix libsasl2-modules swaks)")
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
SETPRIV = shutil.which("setpriv")


def missing() -> str | None:
    """Why the servers cannot run here (None: they can)."""
    for path in (DOVECOT, POSTFIX, POSTFIX_MASTER, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/submission",
                 "/usr/lib/dovecot/lmtp"):
        if not os.path.exists(path):
            return f"{path} is not installed"
    if os.geteuid() != 0:
        return "Postfix and Dovecot's login processes need root to start"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (taken and released at once)."""
    return free_port()


def _wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")
            time.sleep(0.05)


@dataclass
class MailServers:
    material: object                 # wizard.sandbox.ca.Material: TLS files and the JWT key
    tenant_id: str
    domain: str
    tls: object = None               # TLS material of the servers' certificate (default: ``material``'s)
    root: Path = field(default=None)
    ports: dict = field(default_factory=dict)
    procs: list = field(default_factory=list)   # the two masters, our children

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "MailServers":
        self.root = Path(tempfile.mkdtemp(prefix="mw-interop-"))
        self.root.chmod(0o755)          # Dovecot's unprivileged login and mail processes walk into it
        self.ports = {name: free_port() for name in
                      ("imaps", "imap_plain", "submission", "lmtp", "postfix_submit", "postfix_relay")}
        try:
            self._start_dovecot()
            self._start_postfix()
            self._watchdog()
            for port in self.ports.values():
                _wait_listening(port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End both servers (SIGTERM to each master, which ends its children; SIGKILL after 15 s)
        and remove the temp directory."""
        procs, self.procs = self.procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.kill() if getattr(proc, "watchdog", False) else proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _spawn(self, argv, log_name: str) -> None:
        """Start a server's master in the foreground as our child. setpriv --pdeathsig: it gets SIGTERM
        if this process dies without stopping it (no server outlives the test run)."""
        out = open(self.root / "log" / log_name, "wb")
        prefix = [SETPRIV, "--pdeathsig", "TERM", "--"] if SETPRIV else []
        try:
            proc = subprocess.Popen(prefix + argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        self.procs.append(proc)

    def _watchdog(self) -> None:
        """Postfix's master loses the parent-death signal when it changes credentials, and nobody
        would remove the temp directory: a watchdog that keeps the signal ends both masters and
        removes the directory if we die; it ends itself when a master is gone."""
        if not SETPRIV:
            return
        pids = " ".join(str(p.pid) for p in self.procs)
        every = " && ".join(f"kill -0 {p.pid} 2>/dev/null" for p in self.procs)
        some = " || ".join(f"kill -0 {p.pid} 2>/dev/null" for p in self.procs)
        on_term = (f"kill -TERM {pids} 2>/dev/null; n=0; "
                   f"while {{ {some}; }} && [ $n -lt 50 ]; do sleep 0.2; n=$((n+1)); done; "
                   f"rm -rf {self.root}; exit 0")
        script = f"on_term() {{ {on_term}; }}; trap on_term TERM; while {every}; do sleep 1; done"
        dog = subprocess.Popen([SETPRIV, "--pdeathsig", "TERM", "--", "/bin/sh", "-c", script],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dog.watchdog = True
        self.procs.insert(0, dog)        # stop() ends it first (SIGKILL), then the masters

    def log(self) -> str:
        """Both servers' logs (for a failing test's output)."""
        out = []
        for p in (self.root / "log" / "dovecot.log", self.root / "log" / "postfix.log"):
            if p.exists():
                out.append(f"== {p.name}\n{p.read_text(errors='replace')[-6000:]}")
        return "\n".join(out)

    # -- Dovecot -----------------------------------------------------------------------------
    def _ids(self):
        if os.geteuid() == 0:
            mail = pwd.getpwnam("mail") if _user_exists("mail") else pwd.getpwnam("nobody")
            return dict(login="dovenull", internal="dovecot", internal_group="dovecot",
                        mail_uid=mail.pw_uid, mail_gid=mail.pw_gid)
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        return dict(login=me, internal=me, internal_group=group, mail_uid=os.geteuid(), mail_gid=os.getegid())

    def _start_dovecot(self) -> None:
        r, p, ids = self.root, self.ports, self._ids()
        for sub in ("run", "state", "log", "mail", "tls", "keys/default/RS256"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chown(r / "mail", ids["mail_uid"], ids["mail_gid"])
        tls = self.tls or self.material
        shutil.copy(tls.cert_path, r / "tls" / "server.pem")
        shutil.copy(tls.key_path, r / "tls" / "server-key.pem")
        # The local validation key: /<azp or "default">/<alg>/<kid> in the key dict (Dovecot's
        # oauth2 docs, "Local validation"); the sandbox's v1 tokens carry no azp.
        pem = self.material.jwt_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        (r / "keys" / "default" / "RS256" / self.material.kid).write_bytes(pem)
        issuer = f"https://sts.windows.net/{self.tenant_id}/"
        common = (f"introspection_mode = local\nlocal_validation_key_dict = fs:posix:prefix={r}/keys/\n"
                  f"issuers = {issuer}\n")
        # A user's token: its upn must be the XOAUTH2 user.
        (r / "oauth2-user.conf.ext").write_text(common + "username_attribute = upn\nusername_format = %Lu\n")
        # An app's token (no upn): an app token of this tenant (idtyp app, tid) may open any mailbox here;
        # Exchange's per-mailbox FullAccess is not modelled.
        (r / "oauth2-app.conf.ext").write_text(
            common + f"username_attribute = tid\nusername_format = {self.tenant_id}\n"
            "active_attribute = idtyp\nactive_value = app\n")
        conf = f"""
base_dir = {r}/run
state_dir = {r}/state
instance_name = mw-interop-{p['imaps']}
log_path = {r}/log/dovecot.log
protocols = imap submission lmtp
listen = 127.0.0.1
hostname = mail.{self.domain}
default_login_user = {ids['login']}
default_internal_user = {ids['internal']}
default_internal_group = {ids['internal_group']}
first_valid_uid = 1
first_valid_gid = 1
ssl = required
ssl_cert = <{r}/tls/server.pem
ssl_key = <{r}/tls/server-key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = xoauth2 oauthbearer
auth_username_format = %Lu
auth_verbose = yes
auth_failure_delay = 0
mail_location = maildir:{r}/mail/%Lu
mail_uid = {ids['mail_uid']}
mail_gid = {ids['mail_gid']}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {r}/oauth2-user.conf.ext
  result_failure = continue
  result_internalfail = continue
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {r}/oauth2-app.conf.ext
}}
userdb {{
  driver = static
  args = home={r}/mail/%Lu allow_all_users=yes
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {p['imap_plain']}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {p['imaps']}
    ssl = yes
  }}
}}
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {p['submission']}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {p['lmtp']}
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
  # no auth penalty: the tests sign in wrongly on purpose, from 127.0.0.1, one after another
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
submission_relay_host = 127.0.0.1
submission_relay_port = {p['postfix_relay']}
submission_relay_trusted = yes
lmtp_save_to_detail_mailbox = no
"""
        (r / "dovecot.conf").write_text(conf)
        self._spawn([DOVECOT, "-F", "-c", str(r / "dovecot.conf")], "dovecot-master.txt")

    # -- Postfix -------------------------------------------------------------------------------
    def _start_postfix(self) -> None:
        r, p = self.root, self.ports
        d = r / "postfix"
        for sub in ("queue", "data"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        pf = pwd.getpwnam("postfix")
        os.chown(d / "data", pf.pw_uid, pf.pw_gid)
        tls = f"smtpd_tls_cert_file = {r}/tls/server.pem\nsmtpd_tls_key_file = {r}/tls/server-key.pem\n"
        main = f"""
compatibility_level = 3.6
config_directory = {d}
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.{self.domain}
mydomain = {self.domain}
mydestination =
myorigin = {self.domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {r}/log/postfix.log
maillog_file_prefixes = {r}/log/
smtputf8_enable = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
relay_domains =
virtual_mailbox_domains = {self.domain}
virtual_mailbox_maps = static:ok
virtual_transport = lmtp:inet:127.0.0.1:{p['lmtp']}
smtpd_banner = $myhostname ESMTP
{tls}smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = {r}/run/auth-postfix
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
disable_dns_lookups = yes
smtp_dns_support_level = disabled
lmtp_host_lookup = native
delay_warning_time = 0
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
queue_run_delay = 1s
minimal_backoff_time = 1s
"""
        (d / "main.cf").write_text(main)
        # Own master.cf: no chroot; the submission port with STARTTLS required and SASL (through Dovecot),
        # where an authenticated client may only send to the tenant's domain; the relay port for Dovecot.
        (d / "master.cf").write_text(f"""
127.0.0.1:{p['postfix_submit']} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=reject_unauth_destination
  -o mynetworks=
127.0.0.1:{p['postfix_relay']} inet n - n - - smtpd
  -o syslog_name=postfix/relay
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""")
        # `postfix check` makes the queue directories; the master runs in the foreground as our child
        settled(d)
        _run([POSTFIX, "-c", str(d), "check"], r / "log" / "postfix-check.txt", "postfix check")
        self._spawn([POSTFIX_MASTER, "-c", str(d), "-d"], "postfix-master.txt")


def _run(argv, out: Path, what: str) -> None:
    """Run a server's start command; its daemon keeps no pipe of ours open (output goes to a file)."""
    with open(out, "wb") as f:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, check=False,
                             timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({res.returncode}): {out.read_text(errors='replace').strip()[-2000:]}")


def settled(directory: Path) -> None:
    """Date the files in ``directory`` a minute back. Postfix reads a config file again, every 0.3 s,
    while it changed within the last second or so (util/load_file.c): 1.8 s per program start."""
    then = time.time() - 60
    for p in directory.iterdir():
        os.utime(p, (then, then))


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# -- what the interop tests use -------------------------------------------------------------------

class Interop:
    """The running servers, the sandbox whose tokens they accept, and config builders."""

    def __init__(self, servers: MailServers, sandbox, bundle: str, mail_ca: str):
        self.servers, self.sb, self.bundle, self.mail_ca = servers, sandbox, bundle, mail_ca
        self.host = "127.0.0.1"

    @property
    def ports(self) -> dict:
        return self.servers.ports

    def config(self, flow: str, *, submit: str = "submission", accounts=None, sender=None):
        """A config for the sandbox tenant whose SMTP/IMAP servers are the real ones.

        flow "password": the Efecte ESM shape (a service user signs in; it sends as and reads its own
        mailbox). flow "client_secret": app-only. submit: "submission" (Dovecot) or "postfix"."""
        from runtime_helpers import grant_all
        from wizard.config.schema import IncomingAccount
        from wizard.sandbox import sample
        grant_all(self.sb)
        cfg = self.sb.config(flow, protocol="smtp+imap")
        if flow == "password":
            cfg.system = "efecte_esm"
            own = sample.SERVICE_USER
            cfg.outgoing.sender = sender or own
            cfg.incoming.accounts = [IncomingAccount(address=a, username=own, password=sample.SERVICE_PASSWORD)
                                     for a in (accounts or [own])]
        else:
            cfg.outgoing.sender = sender or sample.SENDER
            cfg.incoming.accounts = [IncomingAccount(address=a) for a in (accounts or sample.INCOMING)]
        cfg.outgoing.server, cfg.incoming.server = self.host, self.host
        cfg.outgoing.port = self.ports["submission" if submit == "submission" else "postfix_submit"]
        cfg.incoming.port = self.ports["imaps"]
        cfg.endpoints.ca_bundle = self.bundle       # the sandbox's CA (tokens) and the mail servers' CA
        return cfg

    def dovecot_log(self) -> str:
        """Dovecot's log so far (why its auth process refused a token: "Bad signature", ...)."""
        return (self.servers.root / "log" / "dovecot.log").read_text(errors="replace")

    def maildir(self, address: str, folder: str = "") -> Path:
        base = self.servers.root / "mail" / address.lower()
        return base / f".{folder}" if folder else base

    def messages(self, address: str, folder: str = "") -> list[bytes]:
        d = self.maildir(address, folder)
        out = []
        for sub in ("new", "cur"):
            if (d / sub).is_dir():
                out += [p.read_bytes() for p in sorted((d / sub).iterdir())]
        return out

    def seen(self, address: str, subject: str, folder: str = "") -> list[str]:
        """The maildir flags of each message with ``subject`` in the folder ('S' = \\Seen)."""
        d = self.maildir(address, folder)
        out = []
        for sub in ("new", "cur"):
            for p in sorted((d / sub).iterdir()) if (d / sub).is_dir() else []:
                if f"Subject: {subject}".encode() in p.read_bytes():
                    out.append(p.name.partition(":2,")[2] if sub == "cur" else "")
        return out

    def wait_delivered(self, address: str, subject: str, timeout: float = 20.0) -> bytes:
        """The message with ``subject`` once Dovecot has it in the inbox of ``address`` (bounded wait
        on the condition: Postfix delivers over LMTP from its queue)."""
        deadline = time.monotonic() + timeout
        needle = f"Subject: {subject}".encode()
        while True:
            for raw in self.messages(address):
                if needle in raw:
                    return raw
            if time.monotonic() > deadline:
                raise AssertionError(f"{subject!r} not delivered to {address} in {timeout:.0f} s\n"
                                     + self.servers.log())
            time.sleep(0.05)


def session_servers(sandbox):
    """The pytest fixture's body: start once per session, stop at the end; skip (outside CI) or
    fail (CI=true) with one line when the servers cannot run here."""
    import pytest
    from wizard.sandbox import sample
    from wizard.sandbox.ca import _generate, material
    reason = missing()
    if reason:
        line = INSTALL_HINT if "installed" in reason else f"real-server interop tests skipped: {reason}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}: {line}", pytrace=False)
        pytest.skip(line)
    mail_tls = _generate()                # the mail servers' own test CA (not the sandbox's)
    servers = MailServers(material(), sample.TENANT_ID, sample.DOMAIN, tls=mail_tls)
    servers.start()
    bundle = servers.root / "trusted.pem"
    bundle.write_text(Path(material().ca_path).read_text() + Path(mail_tls.ca_path).read_text())
    try:
        yield Interop(servers, sandbox, str(bundle), mail_tls.ca_path)
    finally:
        servers.stop()
        shutil.rmtree(mail_tls.directory, ignore_errors=True)


# -- assertions the interop tests share -------------------------------------------------------------

JWT_RE = r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"


def assert_clean(text: str) -> None:
    """No traceback, no access token, no password or client secret in what the user sees."""
    import re
    from wizard.sandbox import sample
    assert "Traceback" not in text, text
    assert not re.search(JWT_RE, text), text
    for secret in (sample.SECRET_VALUE, sample.SERVICE_PASSWORD):
        assert secret not in text, text


def save(cfg) -> str:
    from wizard.config import files as config_io
    path = config_io.resolve_path(None)
    config_io.save(cfg, path)
    return str(path)


def cli(argv, capsys) -> tuple[int, str, str]:
    """``mailwizard ARGV`` in process: (exit code, stdout, stderr), checked clean."""
    from wizard.cli.main import main
    code = main(argv)
    out = capsys.readouterr()
    assert_clean(out.out + out.err)
    return code, out.out, out.err


def expired_token(sb, upn: str) -> str:
    """A token the sandbox signed for ``upn`` (SMTP and IMAP scopes) that expired ten minutes ago."""
    import base64
    import json
    from sandbox_helpers import password_token
    from wizard.sandbox.identity import sign_jwt
    fresh = password_token(sb, "https://outlook.office365.com/SMTP.Send "
                               "https://outlook.office365.com/IMAP.AccessAsUser.All")
    body = fresh.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    now = int(time.time())
    claims.update(upn=upn, iat=now - 4200, nbf=now - 4200, exp=now - 600)
    return sign_jwt(claims, sb.material)


class FixedTokens:
    """A token provider for ``Mailer(tokens=...)`` that always hands out one given token."""

    def __init__(self, cfg, token: str):
        from wizard.runtime.tokens import TokenProvider
        self._real = TokenProvider(cfg)
        self._token = token

    def token(self, api: str, who=None) -> str:
        return self._token

    def __getattr__(self, name):
        return getattr(self._real, name)
