"""The optional [relay] section of schema v1: parsed, checked with clear field errors, written back."""

from __future__ import annotations

import pytest

from wizard.config.files import load, parse_text, save
from wizard.config.relay import parse_duration
from wizard.config.schema import Config, ConfigError
from wizard.relay.auth import hash_password, verify

BASE = """version = 1
system = "monitor_g5"
[microsoft]
tenant_id = "5f8d2c1a-7b3e-4a9d-8c6f-1e2d3b4a5c6d"
client_id = "3f6a9c2e-8b1d-4c5e-9a7f-2d4b6e8c0a1f"
[auth]
flow = "client_secret"
client_secret = "Qm48Q~Zr5TgVb2NcX7kLp1WsDf9HjY3uEo6RiAaK"
[outgoing]
protocol = "graph"
sender = "erp@contoso.com"
"""
HASH = hash_password("pw")


def _problems(relay_toml: str) -> dict:
    _, problems = parse_text(BASE + relay_toml)
    out: dict = {}
    for p in problems:
        if not p.warning:
            out[p.field] = out.get(p.field, "") + p.message + " | "
    return out


def test_without_relay_section_nothing_changes():
    cfg, problems = parse_text(BASE)
    assert cfg.relay is None and not [p for p in problems if not p.warning]


def test_valid_section_round_trips_with_comments_kept(tmp_path):
    text = BASE + f"""# the relay for the ERP
[relay]
listen = "127.0.0.1:2526"
max_age = "36h"
max_size_mb = 50

[[relay.clients]]
name = "erp"
password_hash = "{HASH}"
senders = ["erp@contoso.com", "noreply@contoso.com"]
"""
    path = tmp_path / "c.toml"
    path.write_text(text)
    cfg = load(path)
    assert cfg.relay.host_port() == ("127.0.0.1", 2526)
    assert cfg.relay.max_age_seconds == 36 * 3600 and cfg.relay.max_size == 50 * 1024 * 1024
    assert cfg.relay.client("ERP").own_mailbox == "erp@contoso.com"
    save(cfg, path)
    again = path.read_text()
    assert "# the relay for the ERP" in again and load(path).relay == cfg.relay


@pytest.mark.parametrize("toml, field, words", [
    ('[relay]\nmax_size_mb = 200\n', "relay.max_size_mb", "between 1 and 150"),
    ('[relay]\nmax_age = "2 days"\n', "relay.max_age", "\"36h\""),
    ('[relay]\nlisten = "2525"\n', "relay.listen", "host:port"),
    ('[relay]\ntls = "ssl"\n', "relay.tls", "starttls, implicit"),
    ('[relay]\ncertificate = "/nonexistent.pem"\n', "relay.certificate", "does not exist"),
    ('[relay]\nlisten = "0.0.0.0:2525"\n', "relay.listen", "only with TLS"),
    ('[[relay.clients]]\nname = "erp"\npassword_hash = "secret"\nsenders = ["erp@contoso.com"]\n',
     "relay.clients[0].password_hash", "scrypt"),
    (f'[[relay.clients]]\nname = "erp"\npassword_hash = "{HASH}"\nsenders = ["nobody"]\n',
     "relay.clients[0].senders[0]", ""),
    (f'[[relay.clients]]\nname = "erp"\npassword_hash = "{HASH}"\n', "relay.clients[0].senders", "is empty"),
])
def test_bad_values_name_the_field(toml, field, words):
    problems = _problems(toml)
    assert field in problems, problems
    assert words in problems[field]


def test_wrong_types_and_unknown_keys_are_config_errors():
    with pytest.raises(ConfigError) as exc:
        parse_text(BASE + '[relay]\nmax_size_mb = "35MB"\n')
    assert "relay.max_size_mb" in exc.value.render() and "whole number" in exc.value.render()
    with pytest.raises(ConfigError) as exc:
        parse_text(BASE + '[relay]\nport = 25\n')
    assert "unknown key 'port' in [relay]" in exc.value.render()


def test_durations_and_hashes():
    assert parse_duration("2d") == 172800 and parse_duration("36h") == 129600 and parse_duration("1d12h") == 129600
    assert parse_duration("2 days") is None and parse_duration("") is None
    h1, h2 = hash_password("same"), hash_password("same")
    assert h1 != h2 and "same" not in h1                                  # a salt of its own each time
    assert verify("same", h1) and verify("same", h2) and not verify("other", h1) and not verify("same", "x$y")


def test_empty_config_object_has_no_relay():
    assert Config().relay is None
