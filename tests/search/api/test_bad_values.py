"""Every API operation, every parameter and body field its OpenAPI schema names, every kind of
bad value: a declared answer, JSON, and never a 5xx.

The fields come from /api/openapi.json (so a new one is covered without a word here): query
parameters, and the properties of a JSON or multipart body. Each gets, alone, a NUL, an
over-long value, a value of the wrong type and an empty one, with the caller's own photo and
album in the path. ``api_schema.ApiClient`` checks each answer against the schema (a declared
status, its body shape); here, on top, no 5xx and every error in JSON. Schemathesis
(test_fuzz.py) explores further; this walk is exhaustive over fields and exact in what it sends.
"""

from __future__ import annotations

import pytest

from search.albums.services import album_add_photos, album_create
from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db

KINDS = ("NUL", "over-long", "wrong type", "empty")


def bad(kind: str, schema: dict):
    """A bad value of ``kind`` for a field of ``schema`` (an array gets it as its one item)."""
    if schema.get("type") == "array":
        return [] if kind == "empty" else [bad(kind, schema.get("items", {}))]
    return {
        "NUL": "a\x00b",
        "over-long": "x" * 10_000,
        "wrong type": 12345 if schema.get("type") == "string" else "not-a-number",
        "empty": "",
    }[kind]


def resolved(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for option in schema.get("allOf", []) + schema.get("anyOf", []):
        if "$ref" in option or option.get("type"):
            return resolved(spec, option)
    return schema


def field_cases(spec: dict):
    """(method, path template, where, field, field schema) for every field of every operation."""
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    schema = resolved(spec, parameter.get("schema", {}))
                    yield method, template, "query", parameter["name"], schema
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                where = "json" if media == "application/json" else "multipart"
                body = resolved(spec, content["schema"])
                for name, schema in body.get("properties", {}).items():
                    yield method, template, where, name, resolved(spec, schema)


@pytest.fixture
def own(alice):
    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}
    album = album_create(owner=alice, name="A")
    album_add_photos(album=album, photo_ids=[photo.pk])
    return {"photo_id": photo.pk, "album_id": album.pk}


def test_every_field_of_every_operation_takes_bad_values_clearly(api, alice_token, own):
    cases = list(field_cases(api.spec))
    assert len({(m, t) for m, t, *_ in cases}) >= 10 and len(cases) > 40  # the walk found them
    unclear = []
    for method, template, where, field, schema in cases:
        path = template.format(**own)
        for kind in KINDS:
            value = bad(kind, schema)
            sent = {"query": {field: value}} if where == "query" else {where: {field: value}}
            if where == "multipart" and isinstance(value, int):
                sent = {"multipart": {field: str(value)}}
            response = api.request(method.upper(), path, token=alice_token, **sent)
            is_json = response.get("Content-Type", "").startswith("application/json")
            if response.status_code >= 500 or (response.status_code >= 400 and not is_json):
                unclear.append((method, template, field, kind, response.status_code))
    assert not unclear, unclear
