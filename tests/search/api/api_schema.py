"""A test client for the JSON API that checks every answer against the app's own OpenAPI schema:
the status must be one the operation declares, and a JSON body must match its schema."""

from __future__ import annotations

import re
from functools import cached_property

from openapi_schema_validator import OAS31Validator

METHODS = ("get", "post", "put", "patch", "delete")


class ApiClient:
    def __init__(self, client):
        self.client = client
        self.seen: dict[tuple[str, str], list[int]] = {}  # statuses answered, by operation

    @cached_property
    def spec(self) -> dict:
        response = self.client.get("/api/openapi.json")
        assert response.status_code == 200
        return response.json()

    def operations(self) -> list[tuple[str, str]]:
        """Every (METHOD, path template) the schema describes."""
        return [
            (method.upper(), path)
            for path, item in self.spec["paths"].items()
            for method in METHODS
            if method in item
        ]

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        query: dict | None = None,
        json=None,
        multipart: dict | None = None,
        headers: dict | None = None,
    ):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        call = getattr(self.client, method.lower())
        if multipart is not None:
            response = call(path, multipart, headers=headers)
        elif json is not None:
            response = call(path, json, content_type="application/json", headers=headers)
        else:
            response = call(path, query or {}, headers=headers)
        self.check(method, path, response)
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def template_for(self, method: str, path: str) -> str:
        path = path.split("?", 1)[0]
        for template, item in self.spec["paths"].items():
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path) and method.lower() in item:
                return template
        raise AssertionError(f"{method} {path} is not in the OpenAPI schema")

    def check(self, method: str, path: str, response) -> None:
        template = self.template_for(method, path)
        self.seen.setdefault((method.upper(), template), []).append(response.status_code)
        operation = self.spec["paths"][template][method.lower()]
        declared = operation["responses"].get(str(response.status_code))
        assert declared is not None, (
            f"{method} {path} answered {response.status_code}, which its schema does not declare "
            f"({sorted(operation['responses'])}): {response.content[:300]!r}"
        )
        content_type = response.headers.get("Content-Type", "").split(";")[0]
        if response.status_code == 204:
            assert response.content == b"" and "content" not in declared
        elif content_type == "application/json":
            schema = declared["content"]["application/json"]["schema"]
            body = response.json()
            validator = OAS31Validator({**schema, "components": self.spec["components"]})
            errors = sorted(validator.iter_errors(body), key=str)
            assert not errors, f"{method} {path} {response.status_code}: {errors[0]}"
        else:
            media = declared.get("content", {})
            assert any(_media_matches(pattern, content_type) for pattern in media), (
                f"{method} {path} sent {content_type!r}, the schema declares {sorted(media)}"
            )


def _media_matches(pattern: str, content_type: str) -> bool:
    kind, _, sub = pattern.partition("/")
    actual_kind, _, actual_sub = content_type.partition("/")
    return kind == actual_kind and sub in ("*", actual_sub)
