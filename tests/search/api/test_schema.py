import re

import pytest
import requests
from django.contrib.staticfiles import finders
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_the_schema_served_by_the_app_is_valid_openapi(api):
    validate(api.spec)
    assert api.spec["openapi"].startswith("3.1")
    assert api.spec["components"]["securitySchemes"] == {
        "BearerToken": {"type": "http", "scheme": "bearer"}
    }


@pytest.mark.integration
def test_the_schema_over_http_from_a_running_server_is_the_same(api, live_server):
    response = requests.get(f"{live_server.url}/api/openapi.json", timeout=30)

    assert response.headers["Content-Type"].startswith("application/json")
    validate(response.json())
    assert response.json() == api.spec


def test_every_operation_needs_the_token_and_says_so(api):
    for method, path in api.operations():
        operation = api.spec["paths"][path][method.lower()]
        assert operation["security"] == [{"BearerToken": []}], (method, path)
        assert "401" in operation["responses"], (method, path)
        assert operation.get("summary") and operation.get("operationId"), (method, path)


def test_every_path_with_an_id_declares_404(api):
    for method, path in api.operations():
        if "{" in path:
            assert "404" in api.spec["paths"][path][method.lower()]["responses"], (method, path)


def test_the_api_docs_work_offline(client):
    page = client.get("/api/docs").content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(url.startswith("/static/ninja/") for url in assets), assets
    assert "http://" not in page and "https://" not in page
    for url in assets:
        assert finders.find(url.removeprefix("/static/")), url
    assert '"url": "/api/openapi.json"' in page


def test_an_unknown_api_address_answers_json_404(client, alice_token):
    response = client.get("/api/photo", headers={"Authorization": f"Bearer {alice_token}"})
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No such API endpoint; see /api/docs."},
    )


def test_a_database_outage_answers_api_clients_in_json(rf):
    from django.db import OperationalError

    from search.web.middleware import ServiceUnavailableMiddleware

    middleware = ServiceUnavailableMiddleware(lambda request: None)
    response = middleware.process_exception(rf.get("/api/me"), OperationalError("gone"))

    assert (response.status_code, response["Retry-After"]) == (503, "10")
    assert response["Content-Type"] == "application/json"
    assert b"The database cannot be reached right now" in response.content


def _offers_null(schema: dict) -> bool:
    return schema.get("type") == "null" or any(
        _offers_null(option) for option in schema.get("anyOf", []) + schema.get("oneOf", [])
    )


def test_no_query_or_form_field_offers_null(api):
    # Found by Schemathesis: optional search fields were declared "type or null", so it sent
    # the form field strictness=null, which is the text "null" in a form, and got 422.
    offering = []
    for method, path in api.operations():
        operation = api.spec["paths"][path][method.lower()]
        fields = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
        form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
        fields.update(form["schema"]["properties"] if form else {})
        offering += [(method, path, name) for name, field in fields.items() if _offers_null(field)]
    assert offering == []


def test_the_upload_schema_asks_for_at_least_one_file(api):
    # Found by Schemathesis: the schema allowed an empty list of files, which the API refuses
    # (422, "files: Field required": a form with no file has no field at all).
    body = api.spec["paths"]["/api/photos"]["post"]["requestBody"]["content"]
    files = body["multipart/form-data"]["schema"]["properties"]["files"]
    assert (files["type"], files["minItems"]) == ("array", 1)
