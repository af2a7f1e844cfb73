"""Read-back of IDs on support calls: groups of four, a check letter, NATO
spelling, and parsing of what the other side typed."""

from __future__ import annotations

import uuid

from hypothesis import given, settings, strategies as st

from wizard.guide import readback as rb
from wizard.sandbox import sample

HEX = "0123456789abcdef"
SEPARATORS = st.sampled_from([" ", "-", "  ", " - ", "\t", ""])


def _guid(u: uuid.UUID) -> str:
    return str(u)


def test_sample_tenant_reads_as_eight_groups_and_a_check_letter():
    assert rb.groups(sample.TENANT_ID) == ["5f8d", "2c1a", "7b3e", "4a9d", "8c6f", "1e2d", "3b4a", "5c6d"]
    text = rb.format_readback(sample.TENANT_ID)
    assert text.startswith("5f8d 2c1a 7b3e 4a9d 8c6f 1e2d 3b4a 5c6d check ")
    letter = text.rsplit(" ", 1)[1]
    assert letter in rb.CHECK_ALPHABET and letter == rb.check_char(sample.TENANT_ID)
    assert rb.parse_readback(text) == sample.TENANT_ID


def test_check_letters_are_never_hex_nor_look_alikes():
    assert len(set(rb.CHECK_ALPHABET)) == 17
    assert not set(rb.CHECK_ALPHABET.lower()) & set(HEX)
    assert not set("IOS") & set(rb.CHECK_ALPHABET)


def test_spell_says_digits_letters_and_dash():
    assert rb.spell("5f8d") == ["5 five", "f foxtrot", "8 eight", "d delta"]
    assert rb.spell("a-Q") == ["a alpha", "- dash", "Q capital quebec"]
    assert rb.spell("x.@") == ["x x-ray", ". dot", "@ at"]


def test_parse_accepts_quotes_braces_case_and_check_word_variants():
    g = sample.SECRET_APP_ID
    c = rb.check_char(g)
    for typed in (g, g.upper(), "{" + g + "}", f'"{g}"', " ".join(rb.groups(g)),
                  " ".join(rb.groups(g)) + f" {c}", " ".join(rb.groups(g)) + f" check {c.lower()}",
                  "-".join(rb.groups(g)) + f"-{c}", g.replace("-", "") + c, f"{g}\n"):
        assert rb.parse_readback(typed) == g, typed


def test_parse_explains_what_is_wrong():
    g = sample.TENANT_ID
    groups = rb.groups(g)
    assert rb.explain_readback(" ".join(groups[:-1]))[1].startswith("28 hexadecimal characters")
    assert rb.explain_readback(" ".join(groups[:-1]) + " " + rb.check_char(g))[1].startswith("28 hexadecimal")
    assert "not a check letter" in rb.explain_readback(" ".join(groups) + " S")[1]
    assert "not a hexadecimal character" in rb.explain_readback(g.replace("5f8d", "5g8d"))[1]
    wrong = [ch for ch in rb.CHECK_ALPHABET if ch != rb.check_char(g)][0]
    value, why = rb.explain_readback(" ".join(groups) + " " + wrong)
    assert value is None and "does not match" in why
    assert rb.parse_readback("") is None and rb.parse_readback("contoso.com") is None


def test_render_readback_groups_spells_and_handles_domains():
    text = rb.render_readback("Directory (tenant) ID", sample.TENANT_ID)
    lines = text.splitlines()
    assert lines[0] == "Directory (tenant) ID"
    assert lines[1].split() == ["5f8d", "2c1a", "7b3e", "4a9d"]
    assert lines[2].split() == ["8c6f", "1e2d", "3b4a", "5c6d"]
    letter = rb.check_char(sample.TENANT_ID)
    assert lines[3].strip() == f"check {letter} ({rb.NATO[letter.lower()]})"
    assert max(len(line) for line in lines) <= 58          # fits a 60-column terminal
    spelled = rb.render_readback("ID", sample.TENANT_ID, spelled=True)
    assert "1. 5f8d   five, foxtrot, eight, delta" in spelled
    domain = rb.render_readback("Tenant", "contoso.com", spelled=True)
    assert "contoso.com" in domain and "check" not in domain and "o oscar" in domain
    assert "(not set)" in rb.render_readback("Client ID", "")


@settings(max_examples=300, deadline=None)
@given(st.uuids(), st.lists(SEPARATORS, min_size=8, max_size=8), st.booleans(), st.booleans(),
       st.sampled_from(["", " ", " check ", "-", " Check letter: "]))
def test_grouping_and_parsing_round_trip(u, seps, upper, with_check, check_sep):
    guid = _guid(u)
    parts = rb.groups(guid)
    assert len(parts) == 8 and all(len(p) == 4 for p in parts)
    assert "".join(parts) == guid.replace("-", "")
    typed = "".join(p + s for p, s in zip(parts, seps)).strip()
    if upper:
        typed = typed.upper()
    if with_check:
        typed += check_sep + rb.check_char(guid)
    assert rb.parse_readback(typed) == guid
    assert rb.parse_readback(rb.format_readback(guid)) == guid


@settings(max_examples=500, deadline=None)
@given(st.uuids(), st.integers(min_value=0, max_value=31), st.integers(min_value=1, max_value=15))
def test_any_single_character_change_is_caught_by_the_check_letter(u, pos, delta):
    guid = _guid(u)
    bare = guid.replace("-", "")
    changed = bare[:pos] + HEX[(HEX.index(bare[pos]) + delta) % 16] + bare[pos + 1:]
    assert changed != bare
    assert rb.check_char(changed) != rb.check_char(bare)
    # ... so the value typed with the check letter that was read out is refused
    assert rb.parse_readback(" ".join(rb.groups(changed)) + " " + rb.check_char(bare)) is None


@settings(max_examples=300, deadline=None)
@given(st.uuids(), st.integers(min_value=0, max_value=30))
def test_swapping_two_neighbouring_characters_is_caught(u, pos):
    bare = _guid(u).replace("-", "")
    swapped = bare[:pos] + bare[pos + 1] + bare[pos] + bare[pos + 2:]
    if swapped != bare:
        assert rb.check_char(swapped) != rb.check_char(bare)


@settings(max_examples=200, deadline=None)
@given(st.uuids(), st.sampled_from(list(rb.CHECK_ALPHABET)))
def test_a_wrong_check_letter_is_refused(u, letter):
    guid = _guid(u)
    typed = rb.format_readback(guid)[:-1] + letter
    assert (rb.parse_readback(typed) == guid) == (letter == rb.check_char(guid))


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_spell_and_parse_never_raise(text):
    assert len(rb.spell(text)) == len(text)
    rb.parse_readback(text)
    rb.render_readback("x", text)


def test_show_reads_each_id_with_its_check_letter_and_lists_the_users():
    from wizard.cli.show import render
    from wizard.config.schema import Config, UserOverride
    cfg = Config()
    cfg.microsoft.client_id, cfg.microsoft.tenant_id = sample.SECRET_APP_ID, sample.TENANT_ID
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com",
                              password="Shop-Pw-99", sender="shop@contoso.com"),
                 UserOverride(name="SALES", flow="client_secret")]
    text = render(cfg, "mw.toml")
    for guid in (sample.SECRET_APP_ID, sample.TENANT_ID):
        check = rb.check_char(guid)
        assert f"{' '.join(rb.groups(guid))}  check {check} ({rb.NATO[check.lower()]})" in text
    lines = text.splitlines()
    users = [line for line in lines if line.lstrip().startswith("user ") or "WEBSHOP" in line or "SALES" in line]
    assert any("WEBSHOP" in line and "webshop@contoso.com" in line and "shop@contoso.com" in line
               for line in users)
    assert any("SALES" in line and "system's sign-in" in line for line in users)
    assert "Shop-Pw-99" not in text and "Sho" not in text.replace("shop@", "")
    # continuation lines stay under the values
    value_column = lines[0].index("mw.toml")
    read_aloud = [line for line in lines if "read aloud" in line]
    assert len(read_aloud) == 2 and all(line.index("read aloud") == value_column for line in read_aloud)
