"""Each API permission against each API endpoint, on both prefixes: only the permission an
endpoint names lets a key through; every other answers 403 naming the one needed."""

import pytest

from app.models import ApiPermission

PUBLIC = {"openapi_json", "docs"}  # the document and its docs page need no key


def api_routes(app, blueprint: str):
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(f"{blueprint}.") or rule.endpoint.split(".")[-1] in PUBLIC:
            continue
        permission = app.view_functions[rule.endpoint].required_api_permission
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = rule.rule
            for argument in rule.arguments:  # an id nobody has: allowed keys get a 404
                path = path.replace(f"<int:{argument}>", "999").replace(f"<id:{argument}>", "999")
            yield method, path, permission


@pytest.mark.parametrize("blueprint", ["api", "api_compat"])
@pytest.mark.parametrize("permission", list(ApiPermission))
def test_permission_matrix(app, client, auth_headers, blueprint, permission):
    headers = auth_headers([permission])
    wrong = []
    routes = list(api_routes(app, blueprint))
    assert len(routes) >= 15
    for method, path, needed in routes:
        response = client.open(path, method=method, headers=headers, json={})
        if permission == needed:
            ok = response.status_code not in (401, 403) and response.status_code < 500
        else:
            ok = response.status_code == 403 and needed in response.json["detail"]
        if not ok:
            wrong.append((method, path, needed, response.status_code))
    assert wrong == []
