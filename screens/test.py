"""Stage 5: the live connection test, run in a thread so the UI stays responsive."""

from __future__ import annotations

import dataclasses
import threading

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker
from textual import work

from screens.base import StageScreen

STATUS = {  # symbol and word: readable without colour
    "pending": ("·", "pending"), "running": ("…", "running"), "pass": ("✔", "PASS"),
    "warn": ("!", "WARN"), "fail": ("✘", "FAIL"), "skip": ("-", "skipped"),
}
# Which field to focus when jumping back, by the service's code.
FIELD_FOR_CODE = {
    "AADSTS7000215": "auth.client_secret", "AADSTS7000222": "auth.client_secret",
    "AADSTS700016": "microsoft.client_id", "AADSTS90002": "microsoft.tenant_id",
    "AADSTS900023": "microsoft.tenant_id", "AADSTS50126": "auth.password",
    "AADSTS50034": "auth.username", "AADSTS50076": "auth.username", "AADSTS50079": "auth.username",
    "ErrorNonExistentMailbox": "outgoing.sender", "ErrorSendAsDenied": "outgoing.sender",
}
FIELD_ALIASES = {"send_to": "outgoing.test_recipient"}
STAGE_NAMES = {"target": "stage 1 (system and method)", "registration": "stage 2 (app registration)",
               "ids": "stage 3 (IDs and secret)", "mail": "stage 4 (mail settings)"}


def step_text(step) -> Text:
    symbol, word = STATUS.get(step.status, ("?", step.status))
    text = Text()
    text.append(f"{symbol} {word:<8}", style="bold")
    text.append(f" {step.title}")
    if step.ms and step.status not in ("pending", "running"):
        text.append(f"  ({step.ms:.0f} ms)", style="dim")
    if step.summary:
        text.append(f"\n  {step.summary}")
    if step.status in ("fail", "warn"):
        for label, value in (("Code", step.code), ("Fix", step.fix), ("Guide", step.guide_step)):
            if value:
                text.append(f"\n  {label}: ", style="bold")
                text.append(str(value))
        if step.status == "fail" and step.screen:
            where = STAGE_NAMES.get(step.screen, step.screen)
            if str((step.details or {}).get("field", "")).startswith("users["):
                where += ", per-user settings (F7)"
            text.append(f"\n  Press g to go back to {where} and change it.", style="italic")
    return text


class ConnectionTestScreen(StageScreen):
    STAGE = "test"
    STEPS_FIRST = False
    FIRST_FOCUS = "#body"
    BINDINGS = [
        Binding("r", "rerun", "Run again", id="test-rerun"),
        Binding("escape", "cancel", "Cancel test", id="test-cancel"),
        Binding("g", "goto_failed", "Go to fix", id="test-goto"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()
        self.steps: list = []
        self.running = False
        self.worker: Worker | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="test-status", classes="panel", markup=False)
        yield Vertical(id="test-steps")

    def on_mount(self) -> None:
        self.action_rerun()

    # -- running -------------------------------------------------------------
    def action_rerun(self) -> None:
        if self.running:
            return
        self.cancel_event = threading.Event()
        self.running = True
        self.set_status("Testing… (Escape cancels)", "-running")
        self.refresh_bindings()
        self.worker = self.run_connection_test(self.cancel_event)

    def action_cancel(self) -> None:
        """Stop now: the screen forgets the run at once (a request in flight ends in
        the background and its result is dropped); remaining steps are skipped."""
        if self.running:
            self.cancel_event.set()
            self.worker.cancel()

    @work(thread=True, exclusive=True, group="conntest", exit_on_error=False,
          description="Connection test")
    def run_connection_test(self, cancel: threading.Event):
        from wizard.check import engine as conntest
        cfg = self.app.config
        send_to = cfg.outgoing.test_recipient or None
        worker = get_current_worker()

        def post(callback, *args):
            if worker.is_cancelled:
                return
            try:
                self.app.call_from_thread(callback, *args)
            except RuntimeError:   # the app is closing
                pass

        post(self.show_plan, conntest.plan(cfg, send_to=send_to))
        return conntest.run_check(cfg, send_to=send_to, cancel=cancel,
                                  on_step=lambda step: post(self.update_step, dataclasses.replace(step)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "conntest" or event.state not in (
                WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self.running = False
        self.refresh_bindings()
        if event.state == WorkerState.SUCCESS:
            self.finish(event.worker.result)
        elif event.state == WorkerState.CANCELLED:
            self.app.tested_ok = False
            for step in self.steps:
                if step.status in ("pending", "running"):
                    self.update_step(dataclasses.replace(step, status="skip",
                                                         summary="Skipped: the test was cancelled."))
            self.set_status("- Cancelled: the remaining steps were skipped. Press r to run the test again.",
                            "-skip")
        elif event.state == WorkerState.ERROR:
            self.app.tested_ok = False
            self.set_status(f"✘ FAIL: the test itself stopped with an error: {event.worker.error}. "
                            "Press r to run it again.", "-fail")

    def on_unmount(self) -> None:
        self.cancel_event.set()

    # -- showing -------------------------------------------------------------
    def show_plan(self, steps) -> None:
        self.steps = list(steps)
        box = self.query_one("#test-steps", Vertical)
        box.remove_children()
        box.mount_all([Static(step_text(s), id=f"step-{n}", classes=f"step -{s.status}")
                       for n, s in enumerate(self.steps)])

    def update_step(self, step) -> None:
        n = next((i for i, s in enumerate(self.steps) if s.id == step.id), None)
        if n is None:
            self.steps.append(step)
            n = len(self.steps) - 1
            self.query_one("#test-steps", Vertical).mount(Static(id=f"step-{n}", classes="step"))
        self.steps[n] = step
        row = self.query_one(f"#step-{n}", Static)
        row.update(step_text(step))
        row.set_classes(f"step -{step.status}")

    def finish(self, report) -> None:
        for step in report.steps:
            self.update_step(step)
        self.app.last_report = report
        self.app.tested_ok = bool(report.ok)
        failed = [s for s in report.steps if s.status == "fail"]
        warned = [s for s in report.steps if s.status == "warn"]
        if report.ok:
            note = f" with {len(warned)} warning(s): read them below" if warned else ""
            self.set_status(f"✔ PASS: all checks passed{note}. Press ctrl+n to save the configuration.",
                            "-pass")
        elif self.cancel_event.is_set() and not failed:
            self.set_status("- Cancelled: press r to run the test again.", "-skip")
        else:
            first = failed[0] if failed else None
            where = f" First failure: {first.title}." if first else ""
            self.set_status(f"✘ FAIL: {len(failed)} check(s) failed.{where} Read the fix below; "
                            "g goes to the screen to change, r runs the test again.", "-fail")
            if first is not None:
                row = self.query_one(f"#step-{self.steps.index(first)}")
                self.call_after_refresh(row.scroll_visible, animate=False, top=True)

    def set_status(self, text: str, cls: str) -> None:
        status = self.query_one("#test-status", Static)
        status.update(text)
        status.set_classes(f"panel {cls}")

    # -- navigation ------------------------------------------------------------
    def failed_step(self):
        """The first failed step that names a screen (else the first such warning)."""
        for status in ("fail", "warn"):
            step = next((s for s in self.steps if s.status == status and s.screen), None)
            if step is not None:
                return step
        return None

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "cancel":
            return self.running
        if action == "rerun":
            return not self.running
        if action == "goto_failed":
            return not self.running and self.failed_step() is not None
        return True

    def action_goto_failed(self) -> None:
        step = self.failed_step()
        if step is None:
            return
        focus = (step.details or {}).get("field") or FIELD_FOR_CODE.get(step.code or "")
        focus = FIELD_ALIASES.get(focus, focus)
        self.app.goto(step.screen, focus=focus)

    def commit(self):
        if self.running:
            self.cancel_event.set()
        return None
