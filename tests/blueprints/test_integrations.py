"""The Integrations menu: every page has its address and no link in the navigation is dead. (The
Accounting API, M-Pesa, Notifications and Logs pages are tested in test_api_admin.py,
mpesa_admin/, notify_admin/ and logs/.)"""

from html.parser import HTMLParser

import pytest
from flask import url_for

ROLES = ("admin", "loan_officer", "accountant", "viewer")
# Tested in their own files (test_api_admin.py, mpesa_admin/, notify_admin/, logs/).
PAGES = {
    "api_admin.index": "/integrations/accounting-api/",
    "mpesa_admin.index": "/integrations/mpesa/",
    "notify_admin.index": "/integrations/notifications/",
    "logs.index": "/integrations/logs/",
}
# Integrations pages that only some roles may open; the others get 403 from the link.
RESTRICTED = {"/integrations/accounting-api/": ("admin", "accountant")}


class NavLinks(HTMLParser):
    """The href of every <a> inside the page's <header> (the navigation)."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "header":
            self.depth += 1
        elif tag == "a" and self.depth:
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag):
        if tag == "header":
            self.depth -= 1


def nav_links(html: str) -> list[str]:
    parser = NavLinks()
    parser.feed(html)
    return parser.links


def test_the_endpoints_have_these_urls(app):
    with app.test_request_context():
        assert {endpoint: url_for(endpoint) for endpoint in PAGES} == PAGES


@pytest.mark.parametrize("url", PAGES.values())
def test_signed_out_is_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


@pytest.mark.parametrize("role", ROLES)
def test_every_navigation_link_answers(login, role):
    client = login(role)
    links = nav_links(client.get("/dashboard").text)
    expected = {
        "/dashboard",
        "/members/",
        "/loans/",
        "/repayments/",
        "/contributions/",
        *PAGES.values(),
    }
    hidden = {href for href, roles in RESTRICTED.items() if role not in roles}
    assert set(links) == expected - hidden  # a page the role may not open is not offered
    for href in set(links):
        response = client.get(href)
        assert response.status_code < 400, f"{href} answered {response.status_code}"
        if response.status_code in (301, 302, 303):
            assert client.get(response.headers["Location"]).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_accounting_api_is_configured(login, role):
    response = login(role).get(PAGES["api_admin.index"])
    assert "Not configured yet" not in response.text
    assert response.status_code == (200 if role in RESTRICTED[PAGES["api_admin.index"]] else 403)


def test_navigation_marks_the_current_page(admin_client):
    html = admin_client.get("/repayments/").text
    assert '<a href="/repayments/" aria-current="page">Repayments</a>' in html
    assert html.count('aria-current="page"') == 1
