"""Layer 4: reaching Microsoft. The CA bundle to trust (`trust`), the HTTP session with proxies and
timeouts (`session`), the DNS/TCP/TLS probes and the mail servers a config uses (`probes`), and the
log filter that keeps tokens out of logs (`redact`)."""
