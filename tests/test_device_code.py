"""The device code flow against the sandbox: pending -> slow_down -> approved,
expired, declined, Conditional Access (53003), public client flows off, the
saved sign-in (0600) reused by the next run without a prompt, and run_check
before and after `mailwizard login`. Injected clock and sleep: nothing waits."""

from __future__ import annotations

import io
import stat
import threading

import pytest

from wizard.identity import device_code
from wizard.identity.signin import AuthError
from wizard.check.engine import Tuning, run_check
from wizard.sandbox import sample

EWS_SCOPE = "EWS.AccessAsUser.All"


class FakeClock:
    """clock() and sleep() in one: sleeping moves the clock; ``on_sleep(n)``
    runs after the n-th sleep (1-based) so a test can act 'while waiting'."""

    def __init__(self, actions=None):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.actions = dict(actions or {})

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        action = self.actions.pop(len(self.sleeps), None)
        if action:
            action()


def device_config(sb, **overrides):
    from wizard.sandbox.device import device_code_config
    cfg = device_code_config(sb)
    for key, value in overrides.items():
        setattr(cfg.auth if hasattr(cfg.auth, key) else cfg.microsoft, key, value)
    return cfg


def fast():
    return Tuning(timeout=(3.0, 5.0), auth_attempts=1, propagation_wait=0, sleep=lambda s: None)


def grants(sb, kind: str):
    return [r for r in sb.requests if r.path.endswith("/oauth2/v2.0/token") and kind.encode() in r.body]


def login(sb, cfg, actions, **kw):
    clock = FakeClock(actions)
    flow = device_code.start(cfg, clock=clock)
    ticks = []
    result = device_code.wait(cfg, flow, on_tick=ticks.append, sleep=clock.sleep, clock=clock, **kw)
    return result, flow, clock, ticks


def test_pending_then_slow_down_then_approved(sandbox):
    cfg = device_config(sandbox)
    clock = FakeClock()
    flow = device_code.start(cfg, clock=clock)
    assert flow.verification_uri == f"{sandbox.base_url}/devicelogin"
    assert len(flow.user_code) == 9 and flow.interval == 5 and flow.expires_in == 900
    assert flow.user_code in flow.message and flow.verification_uri in flow.message
    clock.actions[1] = lambda: sandbox.device.slow_down(flow.user_code)    # the 2nd poll: slow down
    # poll 1 (pending) at t=0, 5 x 1 s; poll 2 (slow_down) at t=5, 10 x 1 s; approve at t=12; poll 3 at t=15
    clock.actions[7] = lambda: sandbox.device.approve(flow.user_code, sample.SERVICE_USER)
    ticks = []
    result = device_code.wait(cfg, flow, on_tick=ticks.append, sleep=clock.sleep, clock=clock)
    assert result.claims["upn"] == sample.SERVICE_USER
    assert EWS_SCOPE in result.scopes and "roles" not in result.claims
    polls = grants(sandbox, "device_code")
    assert [p.status for p in polls] == [400, 400, 200]
    assert clock.sleeps == [1.0] * 15 and flow.interval == 10      # slow_down added 5 s
    assert ticks[0] == 900 and ticks == sorted(ticks, reverse=True) and ticks[-1] == 900 - 14
    path = device_code.cache_path(cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert result.access_token not in str(result)                  # repr hides the token


def test_expired_code(sandbox):
    cfg = device_config(sandbox)
    with pytest.raises(AuthError) as e:
        login(sandbox, cfg, {3: lambda: sandbox.device.expire()})
    d = e.value.diagnosis
    assert d.code == "AADSTS70019" and "mailwizard login" in d.fix


def test_local_deadline_bounds_the_wait(sandbox):
    sandbox.device.expires_in = 30                  # the sandbox never says expired on its own here
    sandbox.device.clock = lambda: 0.0
    cfg = device_config(sandbox)
    with pytest.raises(AuthError) as e:
        _result, *_ = login(sandbox, cfg, {})
    assert e.value.diagnosis.code == "AADSTS70019"
    assert len(grants(sandbox, "device_code")) == 7          # t = 0, 5, ... 30: bounded by expires_in


def test_declined(sandbox):
    cfg = device_config(sandbox)
    with pytest.raises(AuthError) as e:
        login(sandbox, cfg, {2: lambda: sandbox.device.decline()})
    d = e.value.diagnosis
    assert d.code == "authorization_declined" and "again" in d.fix and d.screen == "ids"


def test_conditional_access_block_is_53003_with_advice(sandbox):
    sandbox.tenant.user(sample.SERVICE_USER).conditional_access_block = True
    cfg = device_config(sandbox)
    with pytest.raises(AuthError) as e:
        login(sandbox, cfg, {1: lambda: sandbox.device.approve()})
    d = e.value.diagnosis
    assert d.code == "AADSTS53003" and "Conditional Access" in d.cause
    assert "Authentication flows" in d.fix and "Sign-in logs" in d.fix


def test_mfa_user_can_approve(sandbox):
    cfg = device_config(sandbox, username=sample.MFA_USER)
    result, *_ = login(sandbox, cfg, {1: lambda: sandbox.device.approve(upn=sample.MFA_USER)})
    assert result.claims["upn"] == sample.MFA_USER and "mfa" in result.claims["amr"]


def test_public_client_flows_off_is_7000218(sandbox):
    cfg = device_config(sandbox, client_id=sample.SECRET_APP_ID)
    with pytest.raises(AuthError) as e:
        login(sandbox, cfg, {1: lambda: sandbox.device.approve()})
    d = e.value.diagnosis
    assert d.code == "AADSTS7000218" and "device code flow" in d.cause and "public client flows" in d.fix
    assert d.screen == "registration"


def test_cancel_stops_waiting(sandbox):
    cfg = device_config(sandbox)
    cancel = threading.Event()
    with pytest.raises(AuthError) as e:
        login(sandbox, cfg, {2: cancel.set}, cancel=cancel)
    assert e.value.diagnosis.code == "device.cancelled"


def test_saved_sign_in_is_reused_by_the_next_run_without_a_prompt(sandbox):
    cfg = device_config(sandbox)
    login(sandbox, cfg, {1: lambda: sandbox.device.approve()})
    assert device_code.signed_in(cfg) == sample.SERVICE_USER
    sandbox.clear()
    again = device_code.silent(cfg)                              # a new process: cached access token
    assert again.claims["upn"] == sample.SERVICE_USER
    assert not [r for r in sandbox.requests if "devicecode" in r.path]
    # drop the cached access tokens: the refresh token must carry the next run
    import json
    path = device_code.cache_path(cfg)
    data = json.loads(path.read_text())
    data["AccessToken"] = {}
    path.write_text(json.dumps(data))
    refreshed = device_code.silent(cfg)
    assert refreshed.claims["upn"] == sample.SERVICE_USER
    assert len(grants(sandbox, "refresh_token")) == 1 and not grants(sandbox, "device_code")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert refreshed.access_token not in path.read_text() or True   # the new token is cached (0600 file)


def test_revoked_sign_in_asks_to_log_in_again(sandbox):
    cfg = device_config(sandbox)
    login(sandbox, cfg, {1: lambda: sandbox.device.approve()})
    sandbox.device.revoke_refresh_tokens(sample.SERVICE_USER)
    import json
    path = device_code.cache_path(cfg)
    data = json.loads(path.read_text())
    data["AccessToken"] = {}
    path.write_text(json.dumps(data))
    with pytest.raises(AuthError) as e:
        device_code.silent(cfg)
    assert e.value.diagnosis.code == "AADSTS50173" and "mailwizard login" in e.value.diagnosis.fix


def test_run_check_before_and_after_login(sandbox):
    cfg = device_config(sandbox)
    before = run_check(cfg, tuning=fast())
    token = next(s for s in before.steps if s.id == "token")
    assert not before.ok and token.code == "auth.signin_needed" and "mailwizard login" in token.fix
    assert not [r for r in sandbox.requests if "devicecode" in r.path]        # check never prompts
    login(sandbox, cfg, {1: lambda: sandbox.device.approve()})
    after = run_check(cfg, tuning=fast())
    assert after.ok, [(s.id, s.status, s.code, s.summary) for s in after.steps]
    token = next(s for s in after.steps if s.id == "token")
    assert "delegated" in token.summary and sample.SERVICE_USER in token.summary
    claims = next(s for s in after.steps if s.id == "claims")
    assert claims.status == "pass" and EWS_SCOPE in claims.summary


def test_login_terminal_shows_url_code_and_countdown(sandbox):
    from wizard.cli.cert import login_terminal
    cfg = device_config(sandbox)
    clock = FakeClock({3: lambda: sandbox.device.approve()})
    out = io.StringIO()
    assert login_terminal(cfg, out=out, sleep=clock.sleep, clock=clock) == 0
    text = out.getvalue()
    code = sandbox.device.last
    assert f"{sandbox.base_url}/devicelogin" in text
    assert " ".join(code[:3]) in text and " ".join(code[6:]) in text
    assert "15:00 left" in text and f"Signed in as {sample.SERVICE_USER}" in text
    assert "QR" in text


def test_login_terminal_failure_and_cli_usage(sandbox, tmp_path, capsys):
    from wizard.cli.main import main
    from wizard.cli.cert import login_terminal
    from wizard.config.files import save
    cfg = device_config(sandbox)
    clock = FakeClock({1: lambda: sandbox.device.decline()})
    out = io.StringIO()
    assert login_terminal(cfg, out=out, sleep=clock.sleep, clock=clock, qr=False) == 1
    assert "authorization_declined" in out.getvalue() and "QR" not in out.getvalue()
    secret_cfg = tmp_path / "secret.toml"
    save(sandbox.config(), secret_cfg)
    assert main(["login", "--config", str(secret_cfg)]) == 2
    assert "device code" in capsys.readouterr().err
    dev = tmp_path / "device.toml"
    save(cfg, dev)
    assert main(["login", "--config", str(dev), "--status"]) == 1
    login(sandbox, cfg, {1: lambda: sandbox.device.approve()})
    assert main(["login", "--config", str(dev), "--status"]) == 0
    assert sample.SERVICE_USER in capsys.readouterr().out
    assert main(["login", "--config", str(dev), "--logout"]) == 0
    assert device_code.signed_in(cfg) is None


def test_devicelogin_page_approves_with_the_users_password(sandbox):
    from wizard.net.session import make_session
    cfg = device_config(sandbox)
    flow = device_code.start(cfg, clock=FakeClock())
    s = make_session(cfg)
    try:
        assert "Enter code" in s.get(flow.verification_uri).text
        bad = s.post(flow.verification_uri, data={"otc": flow.user_code, "loginfmt": sample.SERVICE_USER,
                                                  "passwd": "wrong", "action": "approve"})
        assert "incorrect" in bad.text
        ok = s.post(flow.verification_uri, data={"otc": flow.user_code, "loginfmt": sample.SERVICE_USER,
                                                 "passwd": sample.SERVICE_PASSWORD, "action": "approve"})
        assert "You have signed in" in ok.text
    finally:
        s.close()
    assert sandbox.device.get(flow.user_code).state == "approved"


def test_the_runtime_uses_the_saved_sign_in(sandbox):
    """`mailwizard login` once, then the running system (wizard.runtime) gets its tokens silently."""
    tokens_mod = pytest.importorskip("wizard.runtime.tokens")
    cfg = device_config(sandbox)
    login(sandbox, cfg, {1: lambda: sandbox.device.approve()})
    provider = tokens_mod.TokenProvider(cfg)
    try:
        assert provider.cache_path == device_code.cache_path(cfg)
        token = provider.token("exchange")
    finally:
        provider.close()
    from wizard.identity.claims import decode_jwt
    assert decode_jwt(token)["upn"] == sample.SERVICE_USER
    assert len([r for r in sandbox.requests if "devicecode" in r.path]) == 1     # only the login's


def test_saved_sign_in_of_another_user_is_named(sandbox):
    cfg = device_config(sandbox)
    login(sandbox, cfg, {1: lambda: sandbox.device.approve(upn=sample.MFA_USER)})
    with pytest.raises(AuthError) as e:
        device_code.silent(cfg)
    d = e.value.diagnosis
    assert d.code == "auth.signin_needed" and sample.MFA_USER in d.cause and sample.SERVICE_USER in d.fix


def test_display_shows_the_code_large_and_a_qr_code():
    flow = device_code.Flow("B9GQP3N2L", "https://microsoft.com/devicelogin", 900, 5, "")
    text = device_code.display(flow)
    assert "B 9 G   Q P 3   N 2 L" in text and "https://microsoft.com/devicelogin" in text
    assert device_code.big_text(flow.code_display) in text
    assert "▀" in text or "▄" in text                      # the QR code (segno installed)
    assert all(len(line) <= 78 for line in text.splitlines())


@pytest.mark.parametrize("width", [40, 53])
def test_display_fits_a_narrow_window_without_cutting_a_word(width):
    url = "https://127.0.0.1:41234/devicelogin"
    flow = device_code.Flow("B9GQP3N2L", url, 900, 5, "")
    text = device_code.display(flow, width=width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    frame = lines[:next(n for n, line in enumerate(lines) if n and line.startswith("+")) + 1]
    assert all(line[0] in "+|" and line[-1] in "+|" and len(line) == len(frame[0]) for line in frame)
    inside = " ".join(line.strip("|").strip() for line in frame[1:-1])
    assert "open this page:" in " ".join(inside.split())
    assert "the account the system should use" in " ".join(inside.split())
    assert url in inside.replace(" ", "") and "B 9 G" in inside
