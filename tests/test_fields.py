"""Values typed or pasted by a user: cleaned, judged, explained."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from hypothesis import given, strategies as st

from wizard.config import fields as f
from wizard.sandbox import sample


def test_secret_id_pasted_instead_of_value_is_explained():
    checked = f.check_client_secret(sample.SECRET_ID)
    assert not checked.ok
    assert "Secret ID" in checked.error and "Value" in checked.error


def test_pasted_value_is_cleaned_and_says_what_was_cleaned():
    checked = f.check_client_secret(f'  "{sample.SECRET_VALUE}"\n')
    assert checked.ok and checked.value == sample.SECRET_VALUE
    assert "removed surrounding quotes" in checked.notes
    assert "removed surrounding spaces or line breaks" in checked.notes


def test_truncated_secret_gets_a_warning_not_an_error():
    checked = f.check_client_secret(sample.SECRET_VALUE[:30])
    assert checked.ok and "whole Value" in checked.warning


@pytest.mark.parametrize("raw,ok", [
    ("contoso.com", True), ("contoso.onmicrosoft.com", True), (sample.TENANT_ID, True),
    ("common", False), ("not a tenant", False), ("", False),
])
def test_tenant_id_accepts_guid_or_domain(raw, ok):
    assert f.check_tenant_id(raw).ok is ok


@given(st.uuids())
def test_guid_read_back_with_spaces_or_dashes_round_trips(u: uuid.UUID):
    s = str(u)
    spaced = " ".join(s.replace("-", "")[i:i + 4] for i in range(0, 32, 4))
    assert f.check_client_id(spaced).value == s
    assert f.check_client_id(s.upper()).value == s
    assert f.check_client_id("{" + s + "}").value == s


@pytest.mark.parametrize("when,err", [
    (date(2026, 11, 24), "in the past"),
    (date(2028, 12, 1), "24 months"),
    ("30/06/2027", "YYYY-MM-DD"),
])
def test_bad_secret_expiry_is_rejected(when, err):
    assert err in f.check_secret_expiry(when, today=date(2026, 11, 25)).error


def test_expiry_soon_warns():
    c = f.check_secret_expiry("2026-12-10", today=date(2026, 11, 25))
    assert c.ok and "15 days" in c.warning


def test_server_strips_url_parts_and_mask_hides_secret():
    assert f.check_server("https://outlook.office365.com/EWS/Exchange.asmx").value == "outlook.office365.com"
    masked = f.mask_secret(sample.SECRET_VALUE)
    assert masked == sample.SECRET_VALUE[:6] + "********"
    assert sample.SECRET_VALUE[6:] not in masked


def test_poll_minutes_accepts_the_guides_60_00():
    assert f.check_poll_minutes("60,00").value == 60
    assert not f.check_poll_minutes("0").ok
