"""mailwizard core: config, auth, connection test, diagnosis, mail runtime, CLI, sandbox.

Nothing in this package imports Textual; msal and exchangelib are imported
lazily where they are used.
"""

__version__ = "0.1.0"
