"""The Textual wizard: one screen per stage (target, registration, ids, mail, test, save)."""

from screens.app import WizardApp, make_app

__all__ = ["WizardApp", "make_app"]
