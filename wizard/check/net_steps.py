"""The dns, tcp and tls steps: the login host and every mail server the config
uses, reached as the runtime reaches them (SMTP and IMAP without a proxy)."""

from __future__ import annotations


from wizard.net import probes as netcheck
from wizard.diagnosis.catalogue import Diagnosis, lookup
from wizard.check.model import SERVICE, Step


class NetworkSteps:
    """dns, tcp and tls: mixed into the engine's run."""

    def targets(self) -> list[tuple[str, str, int]]:
        return netcheck.targets(self.cfg)

    def net_diagnosis(self, exc, host, port, default, label) -> Diagnosis:
        d = netcheck.diagnose(exc, self.cfg, host, port, default, label)
        if label in netcheck.DIRECT and netcheck.proxy_for(host, port) and d.code.startswith(("net.", "tls.")):
            d.cause += f" ({SERVICE[label]}, reached directly: the runtime does not use a proxy for it.)"
        return d

    def proxy_dns_diagnosis(self, exc, host, proxy) -> Diagnosis:
        var = netcheck.proxy_variable()
        d = lookup("net.proxy", cfg=self.cfg, host=host, service_message=f"proxy {proxy[0]}:{proxy[1]}: {exc}")
        d.cause = (f"The name of the proxy {proxy[0]} (from {var}) could not be found (DNS), so {host} "
                   "cannot be reached through it.")
        d.fix = (f"Check the proxy's name in {var} and the computer's DNS settings; if this network needs no "
                 f"proxy, unset {var} (or add {host} to NO_PROXY).")
        return d

    def do_dns(self, step: Step) -> None:
        found = []
        for label, host, port in self.targets():
            if host in step.details:
                continue
            try:
                addrs, via = netcheck.resolve(self.cfg, host, port, self.t.timeout[0],
                                              direct=label in netcheck.DIRECT)
            except Exception as exc:
                proxy = None if label in netcheck.DIRECT else netcheck.proxy_for(host, port)
                if proxy:       # the name looked up was the proxy's, not the server's
                    step.details["proxy"] = f"{proxy[0]}:{proxy[1]}"
                    return self.apply(step, self.proxy_dns_diagnosis(exc, host, proxy))
                return self.apply(step, self.net_diagnosis(exc, host, port, "net.dns", label))
            step.details[host] = addrs
            found.append(f"{host} -> {addrs[0]}" + (f" (via proxy {via})" if via else ""))
        step.status, step.summary = "pass", "Found " + "; ".join(found)

    def do_tcp(self, step: Step) -> None:
        done = []
        for label, host, port in self.targets():
            direct = label in netcheck.DIRECT
            try:
                via = netcheck.connect(self.cfg, host, port, self.t.timeout, direct=direct)
            except Exception as exc:
                proxy = None if direct else netcheck.proxy_for(host, port)
                if proxy:
                    d = lookup("net.proxy", cfg=self.cfg, host=host,
                               service_message=f"proxy {proxy[0]}:{proxy[1]}: {exc}")
                    step.details["proxy"] = f"{proxy[0]}:{proxy[1]}"
                    summary = f"{d.cause} Proxy {proxy[0]}:{proxy[1]}: " + (
                        f"it answered {exc.status} {exc.reason}." if isinstance(exc, netcheck.ProxyRefused)
                        else f"{type(exc).__name__}: {exc}.")
                    return self.apply(step, d, summary=summary)
                return self.apply(step, self.net_diagnosis(exc, host, port, "net.timeout", label))
            done.append(f"{host}:{port}" + (f" ({SERVICE[label]})" if label in SERVICE else "")
                        + (f" (CONNECT through proxy {via})" if via else ""))
            if via:
                step.details["proxy"] = via
        step.status, step.summary = "pass", "Connected to " + ", ".join(done)

    def do_tls(self, step: Step) -> None:
        done = []
        for label, host, port in self.targets():
            try:
                info = netcheck.handshake(self.cfg, host, port, self.t.timeout, starttls=label == "smtp",
                                          direct=label in netcheck.DIRECT)
            except Exception as exc:
                return self.apply(step, self.net_diagnosis(exc, host, port, "tls.error", label))
            step.details[f"{host}:{port}" if host in step.details else host] = info
            done.append(f"{host}" + (f":{port}" if port != 443 else "")
                        + (f" ({SERVICE[label]}" + (" after STARTTLS, " if info.get("starttls") else ", ")
                           if label in SERVICE else " (")
                        + f"{info.get('version', 'TLS')}"
                        + (f", through proxy {info['proxy']}" if info.get("proxy") else "")
                        + (f", certificate valid until {info['not_after']}" if info.get("not_after") else "") + ")")
        step.status, step.summary = "pass", "Trusted certificate for " + "; ".join(done)
