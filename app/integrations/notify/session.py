"""The HTTP session every provider client uses: our User-Agent, and the environment's proxy and
CA-bundle settings read once per host instead of on every request (requests reads every
`*_proxy` variable of the environment for each call, a noticeable share of a bulk send's CPU)."""

import requests

USER_AGENT = "Daystar-Integrations/1.0"


class ProviderSession(requests.Session):
    """A `requests.Session` that remembers what the environment says for each host."""

    def __init__(self) -> None:
        super().__init__()
        self.headers["User-Agent"] = USER_AGENT
        self._environment: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies:  # a call's own proxies: as requests does it
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        scheme, _, rest = url.partition("://")
        key = (scheme, rest.split("/", 1)[0], stream, verify, cert)
        if key not in self._environment:
            self._environment[key] = super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        settings = self._environment[key]
        return {**settings, "proxies": dict(settings["proxies"])}  # requests may change its copy
