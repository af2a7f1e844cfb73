"""The guide data (assets/guide_steps.toml) and the manifest snippets."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from wizard.config.files import standard_toml
from wizard.guide.steps import GuideError, ews_warning, guide_path, load_guide, parse, stage
from wizard.guide.manifest import (
    EXCHANGE_ONLINE, MICROSOFT_GRAPH, manifest_entries, manifest_snippet, permissions_for,
)

tomllib = standard_toml()   # tomli before Python 3.11 (the reader the guide uses)
FLOWS = ("client_secret", "password")
CONTRACT_STAGES = ["target", "registration", "ids", "mail", "test", "save"]
FIELDS = ["client_id", "tenant_id", "client_secret", "secret_expires", "username", "password",
          "server", "port", "sender", "test_recipient", "poll_minutes", "account_address",
          "account_types", "account_available_to"]


def azure_numbers(flow: str, guide_id: str) -> set[int]:
    g = load_guide()
    return {s.n for st in g.stages for s in st.steps_for(flow, "monitor_g5")
            if s.guide == guide_id and s.section == "Azure"}


def find(flow: str, guide_id: str, section: str, n: int):
    hits = [(st.id, s) for st in load_guide().stages for s in st.steps
            if flow in s.flows and s.guide == guide_id and s.section == section and s.n == n]
    assert len(hits) == 1, f"{guide_id} {section} {n} for {flow}: {hits}"
    return hits[0]


def test_file_is_packaged_toml_and_loads():
    path = guide_path()
    assert path.name == "guide_steps.toml" and path.is_file()
    assert load_guide() is load_guide()  # cached


def test_stages_follow_the_contract_order():
    g = load_guide()
    assert [s.id for s in g.stages] == CONTRACT_STAGES
    for s in g.stages:
        assert s.title and 2 <= s.intro.count(". ") + 1 <= 4, s.id
    assert stage("ids").title == g.stage("ids").title
    with pytest.raises(KeyError):
        stage("nope")


@pytest.mark.parametrize("stage_id", ["target", "registration", "ids", "mail"])
@pytest.mark.parametrize("flow", FLOWS)
def test_each_working_stage_has_steps_for_both_flows(stage_id, flow):
    assert stage(stage_id).steps_for(flow, "monitor_g5")


def test_efecte_has_password_steps_and_no_client_secret_steps():
    for sid in ("registration", "ids", "mail"):
        steps = stage(sid).steps_for("password", "efecte_esm")
        assert steps and all(s.guide == "004" for s in steps), sid
    assert not any(stage(sid).steps_for("client_secret", "efecte_esm") for sid in CONTRACT_STAGES)
    texts = " ".join(s.text for s in stage("registration").steps_for("password", "efecte_esm"))
    assert "IMAP.AccessAsUser.All" in texts and "SMTP.Send" in texts


def test_client_secret_azure_step_numbers():
    nums = azure_numbers("client_secret", "001")
    assert {9, 11, 15, 18, 20, 21, 22} <= nums
    assert nums == set(range(1, 24))  # guide 001 has Azure steps 1-23, all used


def test_password_azure_step_numbers():
    assert azure_numbers("password", "002") == set(range(1, 20))  # 002: steps 1-19


def test_steps_sit_in_the_right_stage():
    assert find("client_secret", "001", "Azure", 9)[0] == "ids"
    assert find("client_secret", "001", "Azure", 11)[0] == "registration"
    assert find("client_secret", "001", "Azure", 22)[0] == "ids"
    assert find("password", "002", "Azure", 8)[0] == "ids"
    assert find("password", "002", "Incoming e-mail", 10)[0] == "mail"
    assert find("client_secret", "001", "Monitor ERP", 14)[0] == "test"


def test_public_client_flows_setting_per_flow():
    _, no = find("client_secret", "001", "Azure", 18)
    _, yes = find("password", "002", "Azure", 17)
    assert "public client" in no.text.lower() and no.text.rstrip(".").endswith("No")
    assert "public client" in yes.text.lower() and "Yes" in yes.text and " No" not in yes.text
    _, efecte = find("password", "004", "Authentication Settings", 1)
    assert "Yes" in efecte.text and "AADSTS7000218" in efecte.text


def test_flow_specific_permission_steps():
    assert "full_access_as_app" in find("client_secret", "001", "Azure", 14)[1].text
    assert "EWS.AccessAsUser.All" in find("password", "002", "Azure", 13)[1].text
    assert "Value" in find("client_secret", "001", "Azure", 22)[1].text
    assert "User name/Password" in find("password", "002", "Monitor ERP", 8)[1].text
    assert "Client secret" in find("client_secret", "001", "Monitor ERP", 8)[1].text


def test_step_ref_and_text_shape():
    _, step = find("client_secret", "001", "Azure", 22)
    assert step.ref == "Guide 001, Azure step 22"
    _, item = find("password", "004", "Register an application", 8)
    assert item.item and item.ref == "Guide 004, Register an application, item 8"
    for st in load_guide().stages:
        for s in st.steps:
            assert s.guide in {"000", "001", "002", "003", "004"}
            assert 0 < len(s.text) <= 140, s.ref
            assert s.text == s.text.strip() and "\n" not in s.text


def test_no_duplicate_steps():
    keys = [(s.guide, s.section, s.n, fl) for st in load_guide().stages for s in st.steps for fl in s.flows]
    assert len(keys) == len(set(keys))


def test_field_help_present():
    fields = load_guide().fields
    assert set(FIELDS) <= set(fields)
    for name in FIELDS:
        assert fields[name].label and len(fields[name].help) > 30, name
    assert "Overview" in fields["client_id"].help
    assert "once" in fields["client_secret"].help and "Secret ID" in fields["client_secret"].help
    assert "24 months" in fields["secret_expires"].help


def test_flows_list_the_limits():
    g = load_guide()
    assert [f.id for f in g.flows] == list(FLOWS)
    cs, pw = g.flow("client_secret"), g.flow("password")
    for f in (cs, pw):
        assert f.label and f.summary and f.pros and f.cons and f.limitations
    pw_lim, cs_lim = " ".join(pw.limitations), " ".join(cs.limitations)
    assert "MFA" in pw_lim and "Conditional Access" in pw_lim and "security defaults" in pw_lim
    assert "RBAC for Applications" in cs_lim and "Application Access Policies" in cs_lim
    assert "24 months" in cs_lim
    for lim in (pw_lim, cs_lim):
        assert "one authentication method" in lim and "single tenant" in lim


def test_systems():
    g = load_guide()
    assert [s.id for s in g.systems] == ["monitor_g5", "efecte_esm", "generic"]
    efecte = g.system("efecte_esm")
    assert efecte.flows == ["password"] and set(efecte.protocols) == {"imap", "smtp"}
    assert "IMAP" in efecte.description and "delegated" in efecte.description
    assert g.system("monitor_g5").protocols == ["ews"]


def test_ews_warning_three_phases():
    ews = load_guide().ews_retirement
    assert ews.blocked_from == date(2026, 10, 1) and ews.shutdown == date(2027, 4, 1)
    assert ews.recommended == "Microsoft Graph" and "Graph" in ews.warning
    before = ews_warning(date(2026, 9, 30))
    during = ews_warning(date(2026, 11, 25))
    last = ews_warning(date(2027, 3, 31))
    after = ews_warning(date(2027, 4, 1))
    assert "1 October 2026" in before and "(1 day from today)" in before
    assert "1 April 2027" in during and "127 days left" in during
    assert "1 day left" in last
    assert "was switched off on 1 April 2027" in after
    assert len({before, during, after}) == 3


def test_parse_rejects_bad_files():
    data = tomllib.loads(guide_path().read_text(encoding="utf-8"))
    data["stages"] = list(reversed(data["stages"]))
    with pytest.raises(GuideError):
        parse(data)
    data = tomllib.loads(guide_path().read_text(encoding="utf-8"))
    data["stages"][1]["steps"][0]["flows"] = ["client-secret"]
    with pytest.raises(GuideError):
        parse(data)


def test_core_modules_do_not_import_textual():
    code = "import sys, wizard.guide.steps, wizard.guide.manifest; print(any(m.startswith('textual') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- manifest
def pasted(flow: str, protocol: str = "ews", **kw) -> list[dict]:
    text = manifest_snippet(flow, protocol, **kw)
    assert text.startswith('"requiredResourceAccess": [\n  {')
    return json.loads("{" + text + "}")["requiredResourceAccess"]


def access(entries: list[dict], resource: str) -> list[tuple[str, str]]:
    [entry] = [e for e in entries if e["resourceAppId"] == resource]
    return [(a["id"], a["type"]) for a in entry["resourceAccess"]]


def test_manifest_client_secret_ews():
    entries = pasted("client_secret")
    assert entries[0]["resourceAppId"] == EXCHANGE_ONLINE == "00000002-0000-0ff1-ce00-000000000000"
    assert access(entries, EXCHANGE_ONLINE) == [("dc890d15-9560-4a4c-9b7f-a736ec74ec40", "Role")]
    assert access(entries, MICROSOFT_GRAPH) == [("e1fe6dd8-ba31-4d61-89e7-88639da4683d", "Scope")]


def test_manifest_password_ews():
    entries = pasted("password")
    assert access(entries, EXCHANGE_ONLINE) == [("3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5", "Scope")]
    assert "dc890d15-9560-4a4c-9b7f-a736ec74ec40" not in manifest_snippet("password")
    only_exchange = pasted("password", include_user_read=False)
    assert [e["resourceAppId"] for e in only_exchange] == [EXCHANGE_ONLINE]


def test_manifest_graph_app_only():
    roles = access(pasted("client_secret", "graph"), MICROSOFT_GRAPH)
    assert ("b633e1c5-b582-4048-a93e-9f11b44c7e96", "Role") in roles
    assert ("e2a3a72e-5f79-4c64-b1b1-878b674786c9", "Role") in roles   # Mail.ReadWrite: mark processed, move
    assert ("810c84a8-4a9e-49e6-bf7d-12d183f40d01", "Role") not in roles
    assert manifest_entries("client_secret", "graph") == pasted("client_secret", "graph")


@pytest.mark.parametrize("flow,protocol", [("password", "imap"), ("password", "smtp"),
                                            ("client_secret", "imap"), ("password", "graph")])
def test_manifest_refuses_unverified_ids(flow, protocol):
    with pytest.raises(ValueError, match="API permissions page"):
        manifest_snippet(flow, protocol)


def test_manifest_rejects_unknown_input():
    with pytest.raises(ValueError, match="flow"):
        manifest_snippet("certificate")
    with pytest.raises(ValueError, match="protocol"):
        permissions_for("client_secret", "pop")


def test_permissions_text():
    [app, user_read] = permissions_for("client_secret")
    assert app.path == "Office 365 Exchange Online > Application permissions > full_access_as_app"
    assert app.manifest_type == "Role" and user_read.type == "Delegated"
    [deleg] = permissions_for("password", include_user_read=False)
    assert deleg.path == "Office 365 Exchange Online > Delegated permissions > EWS.AccessAsUser.All"
    names = [p.name for p in permissions_for("password", "imap")]
    assert names[0] == "IMAP.AccessAsUser.All" and "User.Read" in names


# -- the parsed guide kept in the user cache dir ---------------------------------------

def _copy_of_the_guide(tmp_path) -> Path:
    src = tmp_path / "guide_steps.toml"
    src.write_bytes(guide_path().read_bytes())
    return src


def _no_toml_parsing(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the TOML file was parsed")
    monkeypatch.setattr(tomllib, "load", refuse)


def test_second_start_reads_the_guide_from_the_cache(tmp_path, monkeypatch):
    from wizard.guide.steps import cache_path, read_data
    src = _copy_of_the_guide(tmp_path)
    expected = tomllib.loads(src.read_text(encoding="utf-8"))
    assert not cache_path().exists()
    assert read_data(src) == expected        # first start: parsed, and cached
    assert cache_path().is_file()
    _no_toml_parsing(monkeypatch)
    data = read_data(src)                    # second start: from the cache, dates and all
    assert data == expected
    assert isinstance(data["ews_retirement"]["shutdown"], date)
    assert parse(data).stage("target").title == parse(expected).stage("target").title


def test_an_edited_guide_file_is_read_again(tmp_path):
    from wizard.guide.steps import read_data
    src = _copy_of_the_guide(tmp_path)
    first = read_data(src)["stages"][0]["title"]
    text = src.read_text(encoding="utf-8").replace(f'title = "{first}"', 'title = "Edited title of stage one"', 1)
    src.write_text(text, encoding="utf-8")
    assert read_data(src)["stages"][0]["title"] == "Edited title of stage one"


def test_a_damaged_or_unwritable_cache_costs_only_speed(tmp_path, monkeypatch):
    from wizard.guide.steps import cache_path, read_data
    src = _copy_of_the_guide(tmp_path)
    expected = tomllib.loads(src.read_text(encoding="utf-8"))
    cache_path().parent.mkdir(parents=True, exist_ok=True)
    cache_path().write_bytes(b"\x00 not a cache")
    assert read_data(src) == expected        # damaged: parsed, and the cache written anew
    _no_toml_parsing(monkeypatch)
    assert read_data(src) == expected
    monkeypatch.undo()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert read_data(src) == expected        # no cache dir possible: still read
