"""`mailwizard check` reads the environment as the runtime does, and names the
environment when it is the mistake: NO_PROXY (CIDR, host:port) as requests reads
it, a proxy whose name cannot be found, a CA bundle variable naming a missing file.

In process through ``wizard.cli.main`` against the session sandbox on 127.0.0.1;
the proxy and DNS failures never leave this computer (a closed local port, *.invalid
answered by an injected resolver)."""

from __future__ import annotations

import json
import socket

import pytest

from wizard.config import files as config_io
from wizard.sandbox import sample
from cli_helpers import fast, run  # noqa: F401 (fast: a fixture, used through pytestmark)

pytestmark = pytest.mark.usefixtures("fast")






def write(tmp_path, cfg, name="mw.toml") -> str:
    return str(config_io.save(cfg, tmp_path / name))


def check(capsys, path) -> tuple[int, dict]:
    rc, out, _ = run(capsys, "check", "--json", "--no-alerts", "--config", path)
    return rc, json.loads(out)


def step(data, step_id):
    return next(s for s in data["steps"] if s["id"] == step_id)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- NO_PROXY: the rule requests applies in the runtime ----------------------------------------

@pytest.mark.parametrize("no_proxy", ["localhost,127.0.0.0/8", "10.0.0.0/8, 127.0.0.1/32"])
def test_no_proxy_cidr_ranges_exempt_the_servers_as_in_send(sandbox, tmp_path, capsys, monkeypatch, no_proxy):
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{closed_port()}")     # a proxy that is down
    monkeypatch.setenv("no_proxy", no_proxy)
    path = write(tmp_path, sandbox.config("client_secret", protocol="graph"))
    rc, data = check(capsys, path)
    assert rc == 0, data
    assert "proxy" not in step(data, "tcp")["summary"] and step(data, "tcp")["status"] == "pass"
    body = tmp_path / "body.txt"
    body.write_text("hello\n")
    rc, out, err = run(capsys, "send", "--config", path, "--to", sample.RECIPIENT, "--subject", "hi",
                       "--body-file", str(body))
    assert rc == 0, out + err                           # the runtime agrees: no proxy for these hosts


def test_no_proxy_host_and_port_is_read_as_requests_reads_it(monkeypatch):
    import requests.utils
    from wizard.net.probes import proxy_for
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "outlook.office365.com:443,10.0.0.0/8")
    for host, port in (("outlook.office365.com", 443), ("outlook.office365.com", 8443), ("10.1.2.3", 443),
                       ("11.1.2.3", 443), ("login.microsoftonline.com", 443)):
        by_requests = requests.utils.get_environ_proxies(f"https://{host}:{port}/").get("https")
        ours = proxy_for(host, port)
        assert (ours is None) == (by_requests is None), (host, port, ours, by_requests)
    assert proxy_for("outlook.office365.com", 443) is None and proxy_for("10.1.2.3", 443) is None
    assert proxy_for("outlook.office365.com", 8443) == ("proxy.example", 3128)


# -- a proxy whose name cannot be found ---------------------------------------------------------

def test_a_proxy_name_that_cannot_be_found_is_named_as_the_proxys(sandbox, tmp_path, capsys, monkeypatch):
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    rc, data = check(capsys, write(tmp_path, sandbox.config("client_secret", protocol="graph")))
    dns = step(data, "dns")
    assert rc == 1 and dns["status"] == "fail" and dns["code"] == "net.proxy"
    assert "proxy.invalid" in dns["summary"] and "HTTPS_PROXY" in dns["summary"]
    assert "The name 127.0.0.1 could not be found" not in dns["summary"]
    assert "HTTPS_PROXY" in dns["fix"] and "spelling of the server name" not in dns["fix"]


# -- a CA bundle variable naming a file that is not there --------------------------------------

def test_a_ca_bundle_variable_naming_no_file_is_named_by_check_and_send(sandbox, tmp_path, capsys, monkeypatch):
    cfg = sandbox.config("client_secret", protocol="graph")
    cfg.endpoints.ca_bundle = ""                    # the config leaves the CA bundle to the environment
    path = write(tmp_path, cfg)
    missing = tmp_path / "nonexist.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    rc, data = check(capsys, path)
    config = step(data, "config")
    assert rc == 1 and config["status"] == "fail"
    assert "REQUESTS_CA_BUNDLE" in config["summary"] and str(missing) in config["summary"]
    assert "does not exist" in config["summary"]
    assert "REQUESTS_CA_BUNDLE" in config["fix"] and "endpoints.ca_bundle" in config["fix"]
    assert all(s["status"] == "skip" for s in data["steps"][1:])     # no vague TLS failure after it

    body = tmp_path / "body.txt"
    body.write_text("hello\n")
    rc, out, err = run(capsys, "send", "--config", path, "--to", sample.RECIPIENT, "--subject", "hi",
                       "--body-file", str(body))
    assert rc == 2 and "REQUESTS_CA_BUNDLE" in err and str(missing) in err and "does not exist" in err
    assert "did not expect" not in err

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path))                  # a folder
    rc, data = check(capsys, path)
    summary = step(data, "config")["summary"]
    assert rc == 1 and "SSL_CERT_FILE" in summary and "folder" in summary

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_path)           # a real file: used, as before
    rc, data = check(capsys, path)
    assert rc == 0, data
