"""The embedded sandbox tenant: a fake Microsoft identity platform and EWS on
https://127.0.0.1 with a throwaway CA, for `mailwizard demo` and the tests."""

from .sample import sample_tenant
from .server import Fault, RecordedRequest, Sandbox

__all__ = ["Sandbox", "Fault", "RecordedRequest", "sample_tenant"]
