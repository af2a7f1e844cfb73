"""The embedded sandbox tenant: a fake Microsoft identity platform, EWS and
Microsoft Graph mail on https://127.0.0.1, plus SMTP (STARTTLS, XOAUTH2) and
IMAP (TLS, XOAUTH2) on ``sb.smtp_port`` / ``sb.imap_port``, all with a
throwaway CA, for `mailwizard demo` and the tests."""

from wizard.sandbox.sample import sample_tenant
from wizard.sandbox.server import Fault, RecordedRequest, Sandbox

__all__ = ["Sandbox", "Fault", "RecordedRequest", "sample_tenant"]
