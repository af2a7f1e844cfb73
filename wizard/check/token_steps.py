"""The token and claims steps: one token per API the config needs, and each
token's audience, tenant, expiry and permissions."""

from __future__ import annotations


from wizard.diagnosis.catalogue import lookup
from wizard.check.model import Step, secs


class TokenSteps:
    """token and claims: mixed into the engine's run."""

    # -- tokens -----------------------------------------------------------------
    @property
    def out_api(self) -> str:
        from wizard.identity.claims import api_of
        return api_of(self.cfg.outgoing.protocol)

    @property
    def in_api(self) -> str:
        from wizard.identity.claims import api_of
        return api_of(self.cfg.incoming.protocol)

    def do_token(self, step: Step) -> None:
        from wizard.identity.signin import AuthError, Retry, acquire_token
        from wizard.identity.claims import API_NAMES, apis

        pending = {}

        def on_retry(attempt, wait):
            pending.update(attempt=attempt + 1, wait=wait)

        def sleep(seconds):
            nxt, total = pending.get("attempt", 2), self.t.auth_attempts
            self.countdown(step, seconds, lambda left: (
                f"The identity platform is busy; trying again in {secs(left)} s (attempt {nxt} of {total})."))
        wanted_apis = apis(self.cfg)
        for api in wanted_apis:      # one token per API: Exchange (EWS, SMTP, IMAP) and/or Graph
            retry = Retry(attempts=self.t.auth_attempts, max_wait=self.t.auth_max_wait, sleep=sleep)
            try:
                tok = acquire_token(self.cfg, retry=retry, timeout=self.t.timeout, on_retry=on_retry,
                                    http_cache=self.http_cache, api=api)
            except AuthError as exc:
                return self.apply(step, exc.diagnosis)
            self.tokens[api] = tok
            self.secrets.add(tok.access_token)
        tok = self.tokens[wanted_apis[0]]
        self.token = self.tokens.get(self.out_api, tok)
        mins = min(t.expires_in for t in self.tokens.values()) // 60
        who = (f"user {self.cfg.auth.username} (delegated)" if self.flow == "password"
               else f"app {self.cfg.microsoft.client_id} (app-only" + (", certificate)" if self.flow == "certificate" else ")"))
        if self.flow == "device_code":    # the saved sign-in of `mailwizard login` (wizard/device_code.py)
            who = f"user {tok.claims.get('upn') or self.cfg.auth.username or '?'} (delegated, saved device code sign-in)"
        step.details.update(expires_in=tok.expires_in, attempts=tok.attempts)
        if len(wanted_apis) > 1:
            step.details["apis"] = wanted_apis
        notes = list(dict.fromkeys(n for t in self.tokens.values() for n in t.notes))
        if notes:
            step.details["note"] = " ".join(notes)
        step.status = "pass"
        what = "token" if len(wanted_apis) == 1 else \
            "tokens for " + " and ".join(API_NAMES[a] for a in wanted_apis) + ","
        step.summary = f"Signed in as {who}; {what} valid for {mins} min." + (
            " Microsoft discourages this flow (no MFA)." if notes else "")

    def do_claims(self, step: Step) -> None:
        from wizard.identity.claims import check_claims, granted
        findings, passed = [], []
        for api, tok in self.tokens.items():
            claims = tok.claims
            if not claims:
                return self.apply(step, lookup("claims.decode", cfg=self.cfg))
            findings += check_claims(claims, self.cfg, self.flow, api=api)
            passed.append(f"Token for {claims.get('aud')} has the right permission ({granted(claims)}).")
            step.details["granted" if len(self.tokens) == 1 else f"granted_{api}"] = granted(claims)
        step.details["findings"] = [f.code for f in findings]
        for status in ("fail", "warn"):
            first = next((f for f in findings if f.status == status), None)
            if first:
                return self.apply(step, first.diagnosis, status)
        step.status, step.summary = "pass", " ".join(passed)

    def account_token(self, step: Step, acc) -> str | None:
        """The incoming protocol's token for an account: the config's own, or
        (user name/password flow) one of the account's own sign-in. None when
        that sign-in failed (the step then holds the diagnosis)."""
        api = self.in_api
        if self.flow == "password" and acc.username and acc.username.lower() != self.cfg.auth.username.lower():
            from wizard.identity.signin import AuthError, Retry, acquire_token
            try:
                tok = acquire_token(self.cfg, username=acc.username, password=acc.password or self.cfg.auth.password,
                                    retry=Retry(attempts=1, sleep=self.sleep), timeout=self.t.timeout,
                                    http_cache=self.http_cache, api=api)
            except AuthError as exc:
                self.apply(step, exc.diagnosis)
                return None
            self.secrets.add(tok.access_token)
            return tok.access_token
        tok = self.tokens.get(api)
        if tok is None:           # cannot happen: the token step got one per API
            self.apply(step, lookup("internal", cfg=self.cfg, service_message=f"no {api} token"))
            return None
        return tok.access_token

    def signin(self, username: str | None = None):
        """The runtime's SignIn for the config's flow (the user for delegated flows)."""
        from wizard.runtime.tokens import SignIn
        if self.flow in ("client_secret", "certificate"):
            return SignIn(self.flow)
        return SignIn(self.flow, username or self.cfg.auth.username or "")
