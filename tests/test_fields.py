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
    assert masked == sample.SECRET_VALUE[:3] + "********"
    assert sample.SECRET_VALUE[3:] not in masked


def test_poll_minutes_accepts_the_guides_60_00():
    assert f.check_poll_minutes("60,00").value == 60
    assert not f.check_poll_minutes("0").ok


# -- a character that does not belong in an ID is named (issue 14, item 20) ---------------------

GUID = "3f6a9c2e-8b1d-4c5e-9a7f-2d4b6e8c0a1f"
LOOK_ALIKES = [
    (GUID[:13] + "\u200b" + GUID[13:], "U+200B ZERO WIDTH SPACE", 14),      # pasted from a chat or a PDF
    (GUID[:20] + "\u0430" + GUID[21:], "U+0430 CYRILLIC SMALL LETTER A", 21),   # looks like 'a'
    (GUID[:-2] + "\uff11" + GUID[-1:], "U+FF11 FULLWIDTH DIGIT ONE", 35),       # looks like '1'
]


@pytest.mark.parametrize("raw, named, position", LOOK_ALIKES)
def test_a_look_alike_or_invisible_character_in_the_client_id_is_named(raw, named, position):
    error = f.check_client_id(raw).error
    assert named in error and f"character {position}" in error


@pytest.mark.parametrize("raw, named, position", LOOK_ALIKES)
def test_a_look_alike_or_invisible_character_in_the_tenant_id_is_named(raw, named, position):
    error = f.check_tenant_id(raw).error
    assert named in error and f"character {position}" in error
    assert "U+043E CYRILLIC SMALL LETTER O" in f.check_tenant_id("c\u043entoso.com").error


def test_a_plain_wrong_character_or_a_missing_digit_says_which():
    assert "Character 1, 'm', is not a hexadecimal digit" in f.check_client_id("monitor-g5-app").error
    assert "31 hexadecimal digits; a GUID has 32" in f.check_client_id(GUID[:-1]).error


def test_the_character_is_named_when_it_comes_from_a_flag(tmp_path, capsys):
    from wizard.cli.main import main
    rc = main(["init", "--non-interactive", "--config", str(tmp_path / "x.toml"),
               "--client-id", LOOK_ALIKES[0][0], "--tenant-id", LOOK_ALIKES[2][0]])
    err = capsys.readouterr().err
    assert rc == 2
    assert "[microsoft.client_id] (from --client-id)" in err and "U+200B ZERO WIDTH SPACE" in err
    assert "[microsoft.tenant_id] (from --tenant-id)" in err and "U+FF11 FULLWIDTH DIGIT ONE" in err


def test_the_character_is_named_when_it_comes_from_the_file(tmp_path):
    from wizard.config import files as config_io
    from wizard.config.schema import ConfigError
    path = tmp_path / "mw.toml"
    text = (f'version = 1\nsystem = "generic"\n[microsoft]\ntenant_id = "{sample.TENANT_ID}"\n'
            f'client_id = "{LOOK_ALIKES[1][0]}"\n')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config_io.load(path)
    assert info.value.field == "microsoft.client_id"
    assert "U+0430 CYRILLIC SMALL LETTER A" in info.value.render()


async def test_the_character_is_named_in_the_wizard_field(tmp_path):
    from screens.app import make_app
    from textual import events
    for size in ((80, 24), (60, 20)):
        app = make_app(tmp_path / f"mw-{size[0]}.toml", stage="ids")
        app.keep_secrets = False
        async with app.run_test(size=size) as pilot:
            assert app.focused.id == "f-microsoft-client_id"
            app.focused.post_message(events.Paste(LOOK_ALIKES[2][0]))
            await pilot.pause()
            await pilot.pause()
            await pilot.press("tab")
            await pilot.pause()
            shown = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
            assert "U+FF11" in shown and "FULLWIDTH" in shown, shown


# -- the secret-format warning says what it checks (issue 14, item 21) --------------------------

@pytest.mark.parametrize("value, problem", [
    (sample.SECRET_VALUE[:30], "it has 30 characters, not 40"),
    ("abcxQ~" + "y" * 34, "its 4th character is not a digit"),
    ("abc88~" + "y" * 34, "its 5th character is not a letter"),
    ("abc8QQ" + "y" * 34, "its 6th character is not '~'"),
])
def test_secret_format_warning_names_what_it_checks_and_what_differs(value, problem):
    warning = f.check_client_secret(value).warning
    assert problem in warning
    assert "40 characters" in warning and "characters 4 to 6 are a digit, a letter and '~'" in warning
    assert value[3:] not in warning          # nothing of the value beyond what a mask shows


def test_a_secret_of_the_current_format_gets_no_warning():
    assert f.check_client_secret(sample.SECRET_VALUE).warning is None
