"""Files that hold secrets, as users met them: a config behind a symlink, a full
disk, two writers at once, the last config that worked, a config others may
read, and masks that show no more than the Azure portal shows."""

from __future__ import annotations

import errno
import json
import os
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest

from wizard.config import files as config_io, drafts
from wizard.cli.main import main
from wizard.config.schema import Config, IncomingAccount, UserOverride
from wizard.sandbox import sample
from wizard.sandbox.tenant import Secret

NEW_VALUE = "Zt93Q~Pq4WmXc8NvB2LkRj6HsYd1GfU5eTa7OiNw"
NEW_ID = "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b"


def linked_config(tmp_path, cfg) -> tuple[Path, Path]:
    """(/etc/erp/mailwizard.toml, /srv/erp/mailwizard.toml): the link and the file it points at."""
    real = config_io.save(cfg, tmp_path / "srv" / "erp" / "mailwizard.toml")
    link = tmp_path / "etc" / "erp" / "mailwizard.toml"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    return link, real


def add_new_secret(sandbox, expires: date) -> None:
    sandbox.tenant.app(sample.SECRET_APP_ID).secrets.append(Secret(NEW_VALUE, NEW_ID, expires))


def rotate(path, monkeypatch, expires: date) -> int:
    monkeypatch.setenv("NEW_MW_SECRET", NEW_VALUE)
    return main(["rotate", "--config", str(path), "--secret-env", "NEW_MW_SECRET", "--expires", expires.isoformat()])


def disk_full(monkeypatch, folder: Path, room: int = 0) -> None:
    """Writes to files under folder fail with ENOSPC once ``room`` bytes went in,
    as on a full disk (cut short mid-write, like the kernel does)."""
    real_write, left = os.write, [room]
    folder = str(folder.resolve())

    def write(fd, data):
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if not name.startswith(folder):
            return real_write(fd, data)
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, bytes(data[:left[0]]))
        left[0] -= n
        return n

    monkeypatch.setattr(os, "write", write)


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- 1. symlinked config --------------------------------------------------------------------------

def test_rotate_through_a_symlink_writes_the_target_and_keeps_the_link(sandbox, tmp_path, monkeypatch, capsys):
    link, real = linked_config(tmp_path, sandbox.config(flow="client_secret"))
    expires = date.today() + timedelta(days=365)
    add_new_secret(sandbox, expires)
    code = rotate(link, monkeypatch, expires)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert config_io.load(real).auth.client_secret == NEW_VALUE      # the file the system reads
    backup = real.with_name("mailwizard.toml.bak")
    assert sample.SECRET_VALUE in backup.read_text() and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert sorted(p.name for p in link.parent.iterdir()) == ["mailwizard.toml"]   # nothing beside the link
    assert str(backup) in out and "delete the old secret" in out


def test_init_through_a_symlink_keeps_the_link(sandbox, tmp_path, monkeypatch, capsys):
    link, real = linked_config(tmp_path, sandbox.config(flow="client_secret"))
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    code = main(["init", "--non-interactive", "--config", str(link), "--poll-minutes", "15"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert link.is_symlink()
    assert config_io.load(real).incoming.poll_minutes == 15
    assert real.with_name("mailwizard.toml.bak").exists()
    assert sorted(p.name for p in link.parent.iterdir()) == ["mailwizard.toml"]


async def test_wizard_save_through_a_symlink_keeps_the_link(sandbox, tmp_path):
    from screens.app import make_app
    link, real = linked_config(tmp_path, sandbox.config(flow="client_secret"))
    app = make_app(link)
    async with app.run_test(size=(80, 24)) as pilot:
        app.config.incoming.poll_minutes = 20
        app.goto("save")
        await pilot.pause()
        app.screen.write()
        await pilot.pause()
    assert link.is_symlink()
    assert config_io.load(real).incoming.poll_minutes == 20
    assert real.with_name("mailwizard.toml.bak").exists()


# -- 5. masks -------------------------------------------------------------------------------------

PASSWORDS = ("Qx7vbnKm", "Zj4-Webshop-Passw0rd!-with-a-long-tail")   # 8 and 38 characters


def password_config(sandbox) -> Config:
    cfg = sandbox.config(flow="password")
    cfg.auth.password = PASSWORDS[1]
    cfg.incoming.accounts = [IncomingAccount(address=sample.INCOMING[0], username=sample.SERVICE_USER,
                                             password=PASSWORDS[0])]
    cfg.users = [UserOverride(name="WEBSHOP", flow="password", username="webshop@contoso.com", password=PASSWORDS[0])]
    return cfg


def assert_password_hidden(text: str) -> None:
    for pw in PASSWORDS:
        assert pw[:3] not in text, pw[:3]           # not even its first characters
    assert "*" * 9 not in text                      # one fixed mask: not the length either


def test_show_report_and_sheet_show_nothing_of_a_password(sandbox, tmp_path, capsys):
    path = config_io.save(password_config(sandbox), tmp_path / "mw.toml")
    assert main(["show", "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "********" in shown
    assert_password_hidden(shown)
    assert main(["report", "--config", str(path)]) == 0
    bundle = capsys.readouterr().out
    assert 'password = "********"' in bundle
    assert_password_hidden(bundle)
    assert main(["export", "sheet", "--config", str(path)]) == 0
    sheet = capsys.readouterr().out
    assert "********" in sheet
    assert_password_hidden(sheet)


def test_a_client_secret_shows_the_portal_hint_only(sandbox, tmp_path, capsys):
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    hint = sample.SECRET_VALUE[:3] + "********"
    for argv in (["show"], ["report"], ["export", "sheet"]):
        assert main([*argv, "--config", str(path)]) == 0
        out = capsys.readouterr().out
        assert hint in out, argv
        assert sample.SECRET_VALUE[:4] not in out, argv


async def test_save_preview_masks_passwords_to_a_fixed_mask(sandbox, tmp_path):
    from screens.app import make_app
    path = tmp_path / "mw.toml"
    app = make_app(path, initial=password_config(sandbox))
    async with app.run_test(size=(80, 24)) as pilot:
        app.goto("save")
        await pilot.pause()
        preview = str(app.screen.query_one("#preview-text").render())
    assert 'password = "********"' in preview
    assert_password_hidden(preview)


# -- 6. disk full ---------------------------------------------------------------------------------

def test_disk_full_during_rotate_leaves_every_file_as_it_was(sandbox, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "etc"
    path = config_io.save(sandbox.config(flow="client_secret"), folder / "mw.toml")
    config_io.save(sandbox.config(flow="client_secret", poll_minutes=30), path)     # a .bak exists
    before = files_in(folder)
    expires = date.today() + timedelta(days=365)
    add_new_secret(sandbox, expires)
    # room for the new config but not for its backup: the .bak was cut short before
    disk_full(monkeypatch, folder, room=len(before["mw.toml"]) + 100)
    code = rotate(path, monkeypatch, expires)
    out, err = capsys.readouterr()
    assert code == 3, out + err
    assert files_in(folder) == before                   # no partial .bak, no temp file, config unchanged
    assert "the disk is full" in err and "Errno" not in out + err
    assert "keeps the old secret" in err and "do not delete it" in err
    assert "delete the old secret" not in out
    assert NEW_VALUE not in out + err and sample.SECRET_VALUE not in out + err


def test_disk_full_during_init_says_so_in_plain_words(sandbox, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "etc"
    path = config_io.save(sandbox.config(flow="client_secret"), folder / "mw.toml")
    before = files_in(folder)
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    disk_full(monkeypatch, folder)
    code = main(["init", "--non-interactive", "--config", str(path), "--poll-minutes", "15"])
    out, err = capsys.readouterr()
    assert code == 2
    assert files_in(folder) == before
    assert f"cannot write {path}: the disk is full" in err and "Errno" not in err
    assert "was not changed" in err


# -- 27. rotate: its own exit code when the save fails --------------------------------------------

def test_rotate_help_and_readme_name_the_not_saved_exit_code():
    from cli_helpers import help_output
    text = help_output(["rotate", "--help"], ())
    assert "3 the new secret passed but could not be saved" in " ".join(text.split())
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "rotate" in readme and "exit code 3" in readme


# -- 9. two writers -------------------------------------------------------------------------------

def another_writer_during_the_test(monkeypatch, path: Path, text: str) -> None:
    """While the connection test runs, someone else writes path (a second init, an editor)."""
    from wizard.check import engine as conntest
    real = conntest.run_check

    def run_check(cfg, **kw):
        path.write_text(text)
        return real(cfg, **kw)

    monkeypatch.setattr(conntest, "run_check", run_check)


def test_init_refuses_a_config_written_by_someone_else_meanwhile(sandbox, tmp_path, monkeypatch, capsys):
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    theirs = path.read_text().replace("poll_minutes = 60", "poll_minutes = 45")
    another_writer_during_the_test(monkeypatch, path, theirs)
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    argv = ["init", "--non-interactive", "--config", str(path), "--poll-minutes", "15", "--save-anyway"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "changed while the test ran" in err and "--overwrite" in err
    assert path.read_text() == theirs
    assert main(argv + ["--overwrite"]) == 0
    assert config_io.load(path).incoming.poll_minutes == 15
    assert "poll_minutes = 45" in config_io.backup_path(path).read_text()


def test_rotate_refuses_a_config_written_by_someone_else_meanwhile(sandbox, tmp_path, monkeypatch, capsys):
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    theirs = path.read_text().replace("poll_minutes = 60", "poll_minutes = 45")
    another_writer_during_the_test(monkeypatch, path, theirs)
    expires = date.today() + timedelta(days=365)
    add_new_secret(sandbox, expires)
    assert rotate(path, monkeypatch, expires) == 3
    err = capsys.readouterr().err
    assert "changed since it was read" in err and "keeps the old secret" in err
    assert path.read_text() == theirs


def test_a_second_writer_waits_for_the_lock(tmp_path):
    path = tmp_path / "mw.toml"
    with config_io.locked(path):
        with pytest.raises(config_io.WriteError) as err:
            with config_io.locked(path, timeout=0):
                pass
    assert "another mailwizard is writing it" in str(err.value)
    with config_io.locked(path, timeout=0):     # free again, and no lock file left behind
        pass
    assert not any(p.name.endswith(".lock") for p in tmp_path.iterdir())


def test_add_clients_at_once_keep_every_client(sandbox, tmp_path):
    """Six `relay add-client` at the same time: each one's client is in the file with the password it
    printed (each used to write the file as it had read it, and the last writer undid the others)."""
    import subprocess
    import sys
    from wizard.relay.auth import verify
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-m", "wizard", "relay", "add-client", f"shop{i}", "--from",
                               sample.SENDER, "--config", str(path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(6)]
    said = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, said
    clients = {c.name: c for c in config_io.load(path).relay.clients}
    assert sorted(clients) == [f"shop{i}" for i in range(6)]
    for i, (out, _) in enumerate(said):
        assert verify(out.split("password: ", 1)[1].strip(), clients[f"shop{i}"].password_hash)


def test_a_command_that_read_the_file_earlier_keeps_what_was_saved_meanwhile(sandbox, tmp_path, monkeypatch):
    """rotate saved a new secret (or an editor changed a value) after `relay add-client` and `register`
    read the file: their writes keep it."""
    from wizard.relay.clients import add_client
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    early = config_io.load(path)                      # what add-client read
    theirs = config_io.load(path)
    theirs.auth.client_secret, theirs.incoming.poll_minutes = NEW_VALUE, 15
    config_io.save(theirs, path)                       # rotate / an editor, meanwhile
    config_io.update(path, lambda now: add_client(now, "erp", [sample.SENDER]))
    kept = config_io.load(path)
    assert (kept.auth.client_secret, kept.incoming.poll_minutes, kept.relay.clients[0].name) == (NEW_VALUE, 15, "erp")
    mine = config_io.load(path)                        # register: read, then a long run
    original = config_io.load(path)
    mine.microsoft.client_id, mine.auth.client_secret = NEW_ID, "Ab1" + "x" * 37
    meanwhile = config_io.load(path)
    meanwhile.outgoing.sender, meanwhile.auth.client_secret = "noreply@contoso.com", NEW_VALUE
    config_io.save(meanwhile, path)
    from wizard.config.changes import save_changes
    save_changes(path, original, mine)
    last = config_io.load(path)
    assert (last.microsoft.client_id, last.auth.client_secret) == (NEW_ID, "Ab1" + "x" * 37)     # its own changes
    assert last.outgoing.sender == "noreply@contoso.com" and last.relay.clients[0].name == "erp"   # and theirs
    assert early.relay is None or not early.relay.clients


async def test_wizard_asks_before_replacing_a_config_changed_since_it_was_read(sandbox, tmp_path):
    from screens.app import make_app
    from screens.dialogs.confirm import ConfirmDialog
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    app = make_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.config.incoming.poll_minutes = 20
        theirs = path.read_text().replace("poll_minutes = 60", "poll_minutes = 45")
        path.write_text(theirs)                 # another wizard saved meanwhile
        app.goto("save")
        await pilot.pause()
        app.screen.write()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and "changed meanwhile" in app.screen.title_text
        await pilot.press("n")                  # Cancel: theirs stays
        await pilot.pause()
        assert path.read_text() == theirs
        app.screen.write()
        await pilot.pause()
        await pilot.press("y")                  # Replace
        await pilot.pause()
    assert config_io.load(path).incoming.poll_minutes == 20
    assert "poll_minutes = 45" in config_io.backup_path(path).read_text()


async def test_a_second_wizard_never_deletes_the_draft_of_a_live_one(tmp_path):
    from screens.app import make_app
    from screens.dialogs.confirm import ConfirmDialog
    path = tmp_path / "mw.toml"
    first = make_app(path)
    async with first.run_test(size=(80, 24)) as pilot1:
        first.config.outgoing.sender = sample.SENDER
        first.dirty = True
        first.keeper.save_now()                 # the first wizard's draft, while it runs
        await pilot1.pause()
        mine = drafts.draft_path(path).read_text()
        second = make_app(path)
        async with second.run_test(size=(80, 24)) as pilot2:
            await pilot2.pause()
            assert isinstance(second.screen, ConfirmDialog)
            assert "Another mailwizard" in second.screen.text
            second.screen.dismiss(False)        # Start over
            await pilot2.pause()
            second.config.outgoing.sender = "someone.else@contoso.com"
            second.dirty = True
            second.keeper.save_now()            # keeps no draft of its own over the first one's
            await pilot2.pause()
            assert drafts.draft_path(path).read_text() == mine
        first.keeper.save_now()                 # the first one still keeps its draft
    assert drafts.load_draft(path).cfg.outgoing.sender == sample.SENDER


# -- 18. the last config that passed ---------------------------------------------------------------

def test_the_last_config_that_passed_is_kept_as_good(sandbox, tmp_path, monkeypatch, capsys):
    path = tmp_path / "mw.toml"
    good = tmp_path / "mw.toml.good"
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", sample.SECRET_VALUE)
    expires = sandbox.config(flow="client_secret").auth.secret_expires.isoformat()
    flags = ["--tenant-id", sample.TENANT_ID, "--client-id", sample.SECRET_APP_ID, "--secret-expires", expires,
             "--server", "127.0.0.1", "--port", str(sandbox.port), "--authority", sandbox.base_url,
             "--ca-bundle", sandbox.ca_path, "--sender", sample.SENDER]
    assert main(["init", "--non-interactive", "--config", str(path), *flags]) == 0
    assert good.read_text() == path.read_text() and stat.S_IMODE(good.stat().st_mode) == 0o600
    working = path.read_text()
    monkeypatch.setenv("MAILWIZARD_CLIENT_SECRET", NEW_VALUE)          # wrong: the test fails
    for _ in range(2):                                                  # two --save-anyway runs
        assert main(["init", "--non-interactive", "--config", str(path), "--save-anyway"]) == 1
    assert NEW_VALUE in path.read_text() and NEW_VALUE in config_io.backup_path(path).read_text()
    assert good.read_text() == working                                  # the working one is still there
    capsys.readouterr()


# -- 19. secrets in files others may read ----------------------------------------------------------

def test_check_warns_when_others_may_read_a_literal_secret(sandbox, tmp_path, capsys, monkeypatch):
    path = config_io.save(sandbox.config(flow="client_secret"), tmp_path / "mw.toml")
    assert main(["check", "--json", "--config", str(path)]) == 0
    quiet = json.loads(capsys.readouterr().out)
    os.chmod(path, 0o644)
    assert main(["check", "--json", "--config", str(path)]) == 0         # a warning, not a failure
    data = json.loads(capsys.readouterr().out)
    assert [list(s) for s in data["steps"]] == [list(s) for s in quiet["steps"]]   # the same shape
    config = data["steps"][0]
    assert config["id"] == "config" and config["status"] == "warn" and config["code"] == "config.mode"
    assert "0644" in config["summary"] and f"chmod 600 {path}" in config["fix"]
    assert main(["check", "--config", str(path)]) == 0
    assert "WARN" in capsys.readouterr().out
    monkeypatch.setenv("MW_SECRET", sample.SECRET_VALUE)                # a reference is no secret
    text = path.read_text().replace(f'"{sample.SECRET_VALUE}"', '"env:MW_SECRET"')
    path.write_text(text)
    os.chmod(path, 0o644)
    assert main(["check", "--json", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["steps"][0]["status"] == "pass"


# -- 10. the demo resumed after a crash ------------------------------------------------------------

async def test_a_demo_resumed_after_a_crash_talks_to_the_new_sandbox_only(tmp_path):
    from screens.app import make_app
    from wizard.check.engine import run_check
    from wizard.sandbox import Sandbox
    path = tmp_path / "demo.toml"
    with Sandbox() as dead:                             # the demo that crashed, and its sandbox
        drafts.save_draft(path, dead.config(protocol="ews"), "test", keep_secrets=True)
    with Sandbox() as sb:
        app = make_app(path, demo=sb)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("enter")                  # Continue
            await pilot.pause()
            cfg = app.config
        assert {cfg.outgoing.port, cfg.incoming.port} == {sb.port}
        report = run_check(cfg)
    assert report.ok, [(s.id, s.summary) for s in report.steps if s.status == "fail"]


# -- 24. the sandbox's temporary files -------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition, timeout: float = 20.0) -> bool:
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)        # polling a folder and a process, bounded
    return True


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_the_sandbox_command_leaves_no_temp_files_however_it_is_stopped(tmp_path, how):
    import signal
    import subprocess
    import sys
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "wizard", "sandbox"], cwd=ROOT, text=True,
                            env=dict(os.environ, TMPDIR=str(tmp)), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        ca = next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("CA certificate"))
        assert Path(ca).is_file() and Path(ca).is_relative_to(tmp)
        proc.send_signal(getattr(signal, how))
        assert proc.wait(timeout=20) == (0 if how != "SIGKILL" else -signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert wait_until(lambda: not any(tmp.iterdir())), list(tmp.iterdir())


def test_closing_the_demos_terminal_leaves_no_temp_files(tmp_path):
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _pty import PtyProgram
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    prog = PtyProgram([sys.executable, "-m", "wizard", "demo", "--config", str(tmp_path / "demo.toml")],
                      env=dict(os.environ, TMPDIR=str(tmp)), cwd=str(ROOT))
    try:
        prog.wait_for("Demo", timeout=30)
        assert any(p.name.startswith("mailwizard-sandbox-") for p in tmp.iterdir())
        os.close(prog.master)                       # the terminal window is closed
        assert wait_until(lambda: prog.proc.poll() is not None), "the demo did not end"
    finally:
        if prog.proc.poll() is None:
            prog.proc.kill()
            prog.proc.wait()
    assert wait_until(lambda: not any(tmp.iterdir())), list(tmp.iterdir())


def test_check_warns_when_others_may_read_a_secret_file(sandbox, tmp_path, capsys):
    secret = tmp_path / "erp-secret"
    secret.write_text(sample.SECRET_VALUE + "\n")
    os.chmod(secret, 0o640)
    path = config_io.save(sandbox.config(flow="client_secret", client_secret=f"file:{secret}"), tmp_path / "mw.toml")
    assert main(["check", "--json", "--config", str(path)]) == 0
    config = json.loads(capsys.readouterr().out)["steps"][0]
    assert config["status"] == "warn" and str(secret) in config["summary"] and "0640" in config["summary"]
    os.chmod(secret, 0o600)
    assert main(["check", "--json", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["steps"][0]["status"] == "pass"
