"""Layer 7b, the local mail relay (`mailwizard relay`): an SMTP submission server (aiosmtpd) for
systems that only speak SMTP with a password, a durable spool, and delivery upstream through
``wizard.runtime`` (Graph and EWS exactly once, SMTP XOAUTH2 at least once). Modules: ``server`` (SMTP,
AUTH, checks), ``auth`` (scrypt client passwords), ``spool`` (files, journals, lock), ``delivery``
(upstream, retries, dead letters), ``dsn`` (bounces), ``status``, ``imap`` (IMAP pass-through with XOAUTH2 upstream), ``pop3`` (POP3 over that
upstream IMAP), ``listener`` (what those two share), ``daemon`` (signals, reload)."""
