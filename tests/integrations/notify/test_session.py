"""ProviderSession: the environment's proxy and CA-bundle settings, read once per host."""

import requests.sessions

from app.integrations.notify.session import USER_AGENT, ProviderSession


def settings_for(session, url):
    return session.merge_environment_settings(url, {}, None, None, None)


def test_the_environment_is_read_once_per_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "sandbox.local")
    reads = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(
        requests.sessions,
        "get_environ_proxies",
        lambda *a, **k: reads.append(a[0]) or real(*a, **k),
    )
    session = ProviderSession()
    for path in ("/a", "/b", "/c"):
        proxies = settings_for(session, f"https://api.example.com{path}")["proxies"]
        assert proxies["https"] == "http://proxy.example:3128"
    assert settings_for(session, "https://sandbox.local/x")["proxies"] == {}  # NO_PROXY
    assert reads == ["https://api.example.com/a", "https://sandbox.local/x"]
    assert session.headers["User-Agent"] == USER_AGENT


def test_a_callers_copy_cannot_change_the_remembered_settings(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    session = ProviderSession()
    first = settings_for(session, "https://api.example.com/a")
    assert first["verify"] == "/etc/ssl/bundle.pem"
    first["proxies"]["https"] = "http://changed"
    assert settings_for(session, "https://api.example.com/b")["proxies"] == {}


def test_a_calls_own_proxies_are_not_remembered():
    session = ProviderSession()
    own = {"https": "http://own-proxy:8080"}
    assert session.merge_environment_settings("https://h/", own, None, None, None)["proxies"] == own
    assert settings_for(session, "https://h/")["proxies"] == {}
