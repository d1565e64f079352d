"""Production settings pass Django's deployment check; pages and files carry the security
headers; every form needs its CSRF token."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import REPO_ROOT, encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db


def production_environment(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "MEDIASEARCH_RATE"))
    }
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "mediasearch.settings.base",
        "DJANGO_SECRET_KEY": "x7Gq-" + "k3v9Zp2Lw8Rt5Ym1Nc6Hb4Jd0Fs" * 2,
        "DJANGO_ALLOWED_HOSTS": "photos.example.com",
        **extra,
    }


def test_check_deploy_passes_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=production_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_are_secure_by_default():
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_CONTENT_TYPE_NOSNIFF, s.MEDIASEARCH_RATE_LIMITS_ENABLED)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO_ROOT,
        env=production_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["False", "True", "True", "True", "31536000", "True", "True"]


@pytest.fixture
def alices_photo(alice):
    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}
    return photo


def test_pages_carry_the_security_headers(alice_client):
    response = alice_client.get(reverse("search:home"))
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert Client().get(reverse("login"))["Content-Security-Policy"] == csp


@pytest.mark.parametrize("kind", ["thumbnail", "preview", "original"])
def test_photo_files_are_images_that_can_run_nothing(alice_client, alices_photo, kind):
    response = alice_client.get(reverse(f"search:photo_{kind}", args=[alices_photo.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].endswith("sandbox")
    assert response["Content-Disposition"].startswith("inline; filename=")
    api = alice_client.get(reverse(f"search:photo_{kind}", args=[alices_photo.pk]), {"download": 1})
    if kind == "original":
        assert api["Content-Disposition"] == 'attachment; filename="a.jpg"'


def test_a_file_of_an_unknown_format_is_only_ever_downloaded(alice_client, alices_photo):
    Photo.objects.filter(pk=alices_photo.pk).update(image_format="SVG", original_filename="x.svg")
    response = alice_client.get(reverse("search:photo_original", args=[alices_photo.pk]))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_stored_files_have_generated_names_and_keep_the_original_name_as_data(alice):
    photo = photo_create(
        owner=alice, file=upload_file("../../etc/evil.php.jpg", encode(make_image()))
    ).photo
    stored = Path(photo.file.name)
    assert "evil" not in stored.name and ".php" not in photo.file.name and ".." not in stored.parts
    assert stored.suffix == ".jpg"
    assert photo.original_filename in ("evil.php.jpg", "../../etc/evil.php.jpg")


# Every view that changes something, with a POST it would accept given the token.
POSTS = {
    "login": ([], {"username": "alice", "password": "alice-password-1"}),
    "logout": ([], {}),
    "search:upload": ([], {}),
    "search:search_by_image": ([], {}),
    "search:album_list": ([], {"name": "x"}),
    "search:album_add": ([], {}),
    "search:album_edit": ([1, "rename"], {"name": "x"}),
    "search:photos_delete": ([], {"photo": 1}),
    "search:api_tokens": ([], {"name": "x"}),
    "search:api_token_revoke": ([1], {}),
    "search:dashboard_action": (["pause"], {}),
}


@pytest.mark.parametrize("name", sorted(POSTS))
def test_every_form_needs_its_csrf_token(staff, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    args, data = POSTS[name]
    response = client.post(reverse(name, args=args), data)
    assert response.status_code == 403, name
    assert "CSRF" in response.content.decode()


def test_every_post_form_in_the_templates_sends_the_csrf_token():
    forms = []
    for template in (REPO_ROOT / "templates").rglob("*.html"):
        html = template.read_text()
        for match in re.finditer(r"<form\b[^>]*>", html, flags=re.IGNORECASE):
            if 'method="post"' in match.group(0).lower():
                body = html[match.end() : html.find("</form>", match.end())]
                forms.append(template.name)
                assert "{% csrf_token %}" in body, f"{template.name}: {match.group(0)}"
    assert len(forms) > 15


def test_no_template_has_inline_scripts_styles_or_handlers():
    for template in (REPO_ROOT / "templates").rglob("*.html"):
        html = template.read_text()
        for script in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
            assert "src=" in script or 'type="application/json"' in script, template.name
        assert not re.search(r"<style\b", html, flags=re.IGNORECASE), template.name
        assert not re.search(r"\son[a-z]+\s*=", html, flags=re.IGNORECASE), template.name
        assert not re.search(r"\sstyle\s*=", html, flags=re.IGNORECASE), template.name
        assert "javascript:" not in html.lower(), template.name
