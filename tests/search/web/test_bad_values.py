"""Every web URL, every field it reads, every kind of bad value: never a 5xx.

The URLs come from the URL resolver (``test_isolation.named_urls``); the fields of each from the
forms that its view's module uses (a new field, or a new form, is covered without a word here)
and from the parameters that module reads from ``request.GET`` / ``request.POST`` itself. Each
field gets, alone, a NUL, an over-long value, a value of the wrong type and an empty one, by GET
and by POST, as staff (who reach every page). The answer must be a 2xx/3xx (the value is
accepted, or the page says what is wrong) or a clear 4xx, and never a 500.

The admin's lists get the same values in each of their filters' parameters and the search box.
"""

from __future__ import annotations

import inspect
import re
from importlib import import_module

import pytest
from django import forms
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse

from search.admin import ModelAdmin as GuardedAdmin
from search.albums.services import album_add_photos, album_create
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.search.web.test_isolation import PUBLIC, named_urls

pytestmark = pytest.mark.django_db

BAD_VALUES = {
    "NUL": "a\x00b",
    "over-long": "x" * 10_000,
    "wrong type": "not-a-number-📷",
    "empty": "",
}
# A clear answer: the page (with its error), a redirect, or a 4xx that says no.
CLEAR = {200, 302, 400, 403, 404, 405}
# Samples for the URLs' own parameters; a new parameter name fails the walk below.
ACTIONS = {
    "search:album_edit": ["rename", "share", "unshare", "remove", "delete"],
    "search:dashboard_action": [
        "pause", "resume", "embed-missing", "reembed-all", "retry", "retry-reason", "delete",
        "switch", "cancel-switch",
    ],
}  # fmt: skip
# Read from request.GET / request.POST (or a local ``post = request.POST``) in a view.
RAW_PARAMETER = re.compile(r"""\b(?:GET|POST|post)\.get(?:list)?\(\s*["'](\w+)["']""")


def fields_of(view) -> set[str]:
    """The names a view may read: the fields of every form its module uses, and the parameters
    the module reads itself."""
    module = import_module(view.__module__)
    names = set(RAW_PARAMETER.findall(inspect.getsource(module)))
    for value in vars(module).values():
        if inspect.isclass(value) and issubclass(value, forms.BaseForm):
            names |= set(value.base_fields)
    return names


def url_cases(pks: dict[str, int]) -> list[tuple[str, str]]:
    """(URL name, address) for every web URL outside the admin and the API."""
    cases = []
    for name, pattern in named_urls():
        if name.startswith(("admin:", "api:")) or name in PUBLIC:
            continue
        params = list(pattern.pattern.regex.groupindex)
        unknown = set(params) - {"pk", "action"}
        assert not unknown, f"add a sample for {unknown} ({name}) to {__name__}"
        for action in ACTIONS.get(name, [None]) if "action" in params else [None]:
            kwargs = {"pk": pks[name]} if "pk" in params else {}
            if action is not None:
                kwargs["action"] = action
            cases.append((name, reverse(name, kwargs=kwargs)))
    return cases


@pytest.fixture
def staff_world(staff):
    """Staff's own photo and album, so that every address names something that exists."""
    photo = photo_create(owner=staff, file=upload_file("s.jpg", encode(make_image()))).photo
    album = album_create(owner=staff, name="S")
    album_add_photos(album=album, photo_ids=[photo.pk])
    return {"album": album.pk, "photo": photo.pk}


def sample_pks(world) -> dict[str, int]:
    pks = {}
    for name, _ in named_urls():
        pks[name] = world["album"] if name.startswith("search:album") else world["photo"]
    return pks


def test_every_field_of_every_page_takes_bad_values_without_a_5xx(staff, staff_world):
    client = Client(raise_request_exception=False)
    client.force_login(staff)
    resolver_views = {name: pattern.callback for name, pattern in named_urls()}
    unclear = []
    requests = 0
    for name, url in url_cases(sample_pks(staff_world)):
        for field in sorted(fields_of(resolver_views[name])):
            for kind, value in BAD_VALUES.items():
                for method in (client.get, client.post):
                    response = method(url, {field: value})
                    requests += 1
                    if response.status_code not in CLEAR:
                        unclear.append((method.__name__, url, field, kind, response.status_code))
    assert requests > 1000  # the walk found the URLs and their fields
    assert not unclear, unclear


def test_every_admin_list_refuses_bad_filter_values_clearly(django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root-password-1")
    client = Client(raise_request_exception=False)
    client.force_login(root)
    factory_request = RequestFactory().get("/")
    factory_request.user = root
    unclear = []
    for model, model_admin in admin.site._registry.items():
        changelist = model_admin.get_changelist_instance(factory_request)
        parameters = {"q"} if model_admin.search_fields else set()
        for spec in changelist.filter_specs:
            parameters |= set(spec.expected_parameters())
        if model_admin.date_hierarchy:
            parameters |= {f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month")}
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for parameter in sorted(parameters):
            for kind, value in BAD_VALUES.items():
                status = client.get(url, {parameter: value}).status_code
                # The admin answers a value it cannot use with a redirect to ?e=1; ours (and
                # axes's, registered by search.admin) refuse NUL outright.
                guarded = isinstance(model_admin, GuardedAdmin)
                expected = {400} if kind == "NUL" and guarded else {200, 302, 400}
                if status not in expected:
                    unclear.append((url, parameter, kind, status))
    guarded = [a for a in admin.site._registry.values() if isinstance(a, GuardedAdmin)]
    assert len(guarded) == 7  # search's four and axes's three
    assert not unclear, unclear
