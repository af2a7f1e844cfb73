"""Monitoring: what `mailwizard check` tells the tools admins already run.

- ``facts``: the dates that end a working setup (secret, certificate, EWS
  retirement) and when a delegated sign-in was last used.
- ``watch``: one profile's check with those facts, the idle sign-in warning and
  the alert mails; every profile concurrently (bounded).
- ``metrics``: the Prometheus text exposition format (node_exporter's textfile collector).
- ``nagios``: one plugin status line with perfdata, and the plugin exit code.
- ``alerts``: alert mails through the config's own mailbox, once per threshold
  (state in the user state dir, 0600).

Layer: above ``check`` (it runs the check), below ``cli`` (which only formats
and writes). No Textual; prometheus_client and the runtime load when used.
"""
