"""A broken config names the line where the problem is (README: "gives the
file, line and field"): in the second [[incoming.accounts]] table, not the
first; a key or table given twice at its second appearance."""

from __future__ import annotations

import pytest

from wizard.config import files as config_io
from wizard.config.schema import ConfigError
from wizard.relay.auth import hash_password
from wizard.sandbox import sample

BASE = f"""\
version = 1
system = "monitor_g5"

[microsoft]
tenant_id = "{sample.TENANT_ID}"
client_id = "{sample.SECRET_APP_ID}"

[auth]
flow = "client_secret"
client_secret = "{sample.SECRET_VALUE}"

[outgoing]
protocol = "ews"
sender = "erp@contoso.com"

[incoming]
protocol = "ews"
"""
ACCOUNTS = """
[[incoming.accounts]]
address = "orders@contoso.com"
types = ["Monitor-to-Monitor"]

[[incoming.accounts]]
address = "invoices@contoso.com"
types = ["Monitor-to-Monitor"]
"""


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line that is exactly ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if line == needle]
    return hits[nth - 1]


def _error(tmp_path, text: str) -> str:
    p = tmp_path / "la.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        config_io.load(p)
    msg = err.value.render()
    assert msg.startswith(f"{p}:"), msg
    return msg.removeprefix(f"{p}:")


@pytest.mark.parametrize("broken,field", [
    ('address = "invoices-at-contoso.com"', "incoming.accounts[1].address"),       # a value check
    ('address = 42', "incoming.accounts[1].address"),                              # a wrong type
    ('adress = "invoices@contoso.com"', "incoming.accounts[1].adress"),            # an unknown key
])
def test_error_in_the_second_account_names_its_line(tmp_path, broken, field):
    text = BASE + ACCOUNTS.replace('address = "invoices@contoso.com"', broken)
    msg = _error(tmp_path, text)
    assert msg.startswith(f"{_line_of(text, broken)}: [{field}]"), msg


def test_second_account_without_address_names_its_header(tmp_path):
    text = BASE + ACCOUNTS.replace('address = "invoices@contoso.com"\n', "")
    msg = _error(tmp_path, text)
    assert msg.startswith(f"{_line_of(text, '[[incoming.accounts]]', 2)}: [incoming.accounts[1].address]"), msg


def test_error_in_the_second_relay_client_names_its_line(tmp_path):
    good = hash_password("pw")
    text = BASE + f"""
[[relay.clients]]
name = "erp"
password_hash = "{good}"
senders = ["erp@contoso.com"]

[[relay.clients]]
name = "shop"
password_hash = "secret"
senders = ["shop@contoso.com"]
"""
    msg = _error(tmp_path, text)
    bad = _line_of(text, 'password_hash = "secret"')
    assert msg.startswith(f"{bad}: [relay.clients[1].password_hash]"), msg


@pytest.mark.parametrize("twice", [
    'protocol = "graph"',          # a key given twice in [outgoing]
    "[incoming]",                  # a table declared twice
    "[incoming.accounts]",         # [[incoming.accounts]] declared again as a table
])
def test_something_given_twice_is_reported_at_its_second_appearance(tmp_path, twice):
    # put it just before the second account, well before the end of its table
    text = BASE + ACCOUNTS.replace('\n[[incoming.accounts]]\naddress = "invoices',
                                   f'\n{twice}\n[[incoming.accounts]]\naddress = "invoices')
    if twice.startswith("protocol"):
        text = BASE.replace('protocol = "ews"\nsender', f'protocol = "ews"\n{twice}\nsender') + ACCOUNTS
    msg = _error(tmp_path, text)
    second = _line_of(text, twice, text.splitlines().count(twice))
    assert msg.startswith(f"{second}: TOML syntax error"), msg
    assert "only once" in msg
