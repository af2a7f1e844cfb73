"""The check's results in the Prometheus text exposition format (version 0.0.4),
made with prometheus_client (imported here only), labelled by profile:

    mailwizard_check_ok{profile}                           1 every step passed (warnings allowed), else 0
    mailwizard_check_step_status{profile,step,status}      1 for the step's status (pass|warn|fail|skip), 0 others
    mailwizard_check_duration_seconds{profile}             how long the check took
    mailwizard_secret_expiry_timestamp_seconds{profile}    client secret flow, when auth.secret_expires is set
    mailwizard_certificate_expiry_timestamp_seconds{profile}  certificate flow (config date, else the certificate's)
    mailwizard_refresh_token_last_used_timestamp_seconds{profile}  delegated flows, once a sign-in is on record
    mailwizard_ews_retirement_timestamp_seconds{profile}   EWS on Exchange Online: the day Microsoft switches it off
    mailwizard_alerts_unsent{profile}                      alerts due but not sent (only with [alerts])
    mailwizard_check_timestamp_seconds{profile}            when the check ran
    mailwizard_relay_messages{profile,state}               the relay's spool ([relay] only): queued, retrying, dead
    mailwizard_relay_delivered_today{profile}              messages the relay delivered since midnight (local time)

Dates are the start of the day (UTC) in seconds since the epoch, to compare
with ``time()`` in an alerting rule.
"""

from __future__ import annotations

from wizard.monitor.facts import timestamp

STATUSES = ("pass", "warn", "fail", "skip")
HELP = {
    "mailwizard_check_ok": "1 when every step of the mailwizard connection test passed (warnings allowed), else 0.",
    "mailwizard_check_step_status": "1 for the status each step of the test ended with (pass, warn, fail, skip), 0 for the others.",
    "mailwizard_check_duration_seconds": "How long the connection test took.",
    "mailwizard_secret_expiry_timestamp_seconds": "When the client secret expires (auth.secret_expires), start of the day UTC.",
    "mailwizard_certificate_expiry_timestamp_seconds": "When the sign-in certificate expires, start of the day UTC.",
    "mailwizard_refresh_token_last_used_timestamp_seconds": "Last successful sign-in or refresh of the delegated sign-in; a refresh token lapses 90 days after it (AADSTS700082).",
    "mailwizard_ews_retirement_timestamp_seconds": "When Microsoft switches EWS in Exchange Online off, start of the day UTC.",
    "mailwizard_alerts_unsent": "Alert mails that were due but could not be sent.",
    "mailwizard_check_timestamp_seconds": "When the connection test ran.",
    "mailwizard_relay_messages": "Messages in the relay's spool by state: queued (not tried yet), retrying, dead.",
    "mailwizard_relay_delivered_today": "Messages the relay delivered upstream since midnight (local time).",
}


def render(results) -> str:
    """The exposition text for a list of ``watch.ProfileResult``."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name, *labels):
        return Gauge(name, HELP[name], ["profile", *labels], registry=registry)
    ok = gauge("mailwizard_check_ok")
    step = gauge("mailwizard_check_step_status", "step", "status")
    duration = gauge("mailwizard_check_duration_seconds")
    ran = gauge("mailwizard_check_timestamp_seconds")
    secret = gauge("mailwizard_secret_expiry_timestamp_seconds")
    cert = gauge("mailwizard_certificate_expiry_timestamp_seconds")
    used = gauge("mailwizard_refresh_token_last_used_timestamp_seconds")
    ews = gauge("mailwizard_ews_retirement_timestamp_seconds")
    unsent = gauge("mailwizard_alerts_unsent")
    relay = gauge("mailwizard_relay_messages", "state")
    delivered = gauge("mailwizard_relay_delivered_today")
    for r in results:
        p = r.profile
        ok.labels(p).set(1 if r.ok else 0)
        for s in r.report.steps:
            final = s.status if s.status in STATUSES else "skip"
            for status in STATUSES:
                step.labels(p, s.id, status).set(1 if status == final else 0)
            if s.id == "alerts":
                unsent.labels(p).set(s.details.get("unsent", 0))
        duration.labels(p).set(round(r.duration, 3))
        ran.labels(p).set(round(r.ran_at))      # when it ran, not when printed: one run, one set of numbers
        f = r.facts
        for metric, day in ((secret, f.secret_expires), (cert, f.certificate_expires), (ews, f.ews_shutdown)):
            if day is not None:
                metric.labels(p).set(timestamp(day))
        if f.refresh_last_used is not None:
            used.labels(p).set(round(f.refresh_last_used))
        if f.relay is not None:
            for state in ("queued", "retrying", "dead"):
                relay.labels(p, state).set(f.relay[state])
            delivered.labels(p).set(f.relay["delivered_today"])
    return generate_latest(registry).decode("utf-8")
