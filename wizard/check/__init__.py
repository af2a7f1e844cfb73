"""Layer 7: the connection test. The engine behind the wizard's test stage and `mailwizard check`
(steps config, dns, tcp, tls, token, claims, mailbox, send, mailbox:<address>), and secret rotation
(`rotate`: a new secret is tested before it replaces the old one)."""
