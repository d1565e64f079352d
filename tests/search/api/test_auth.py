import hashlib
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from search.accounts.services import api_token_authenticate, api_token_create, api_token_revoke
from search.models import ApiToken

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_only_as_its_sha256(alice):
    token, key = api_token_create(user=alice, name="  backup script  ")

    row = ApiToken.objects.get()
    assert (row.pk, row.user, row.name) == (token.pk, alice, "backup script")
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:8]
    assert len(key) >= 43  # 32 random bytes, URL-safe base64
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert not any(key in value for value in stored)


def test_each_token_is_different(alice):
    keys = {api_token_create(user=alice, name="t")[1] for _ in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Token x"},
        {"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQtMQ=="},  # alice's password
    ],
    ids=["none", "empty", "unknown", "other-scheme", "basic-password"],
)
def test_calls_without_a_valid_token_are_refused_with_401(api, alice, headers):
    response = api.get("/api/me", headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "A valid API token is required: send 'Authorization: Bearer <token>'. "
        "Tokens are made on /account/tokens/."
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="MediaSearch"'


def test_a_session_login_is_not_enough_for_the_api(api, client, alice):
    client.force_login(alice)
    assert api.get("/api/me").status_code == 401


def test_the_token_decides_who_calls_whatever_session_comes_along(api, client, alice, bob_token):
    client.force_login(alice)
    assert api.get("/api/me", token=bob_token).json()["username"] == "bob"


def test_a_revoked_token_stops_working(api, alice, alice_token):
    assert api.get("/api/me", token=alice_token).status_code == 200
    token = ApiToken.objects.get(user=alice)

    assert api_token_revoke(user=alice, token_id=token.pk) is True

    assert api.get("/api/me", token=alice_token).status_code == 401
    assert not ApiToken.objects.exists()


def test_nobody_revokes_another_users_token(alice, bob, alice_token):
    token = ApiToken.objects.get(user=alice)
    assert api_token_revoke(user=bob, token_id=token.pk) is False
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_an_inactive_users_token_is_refused(api, alice, alice_token):
    alice.is_active = False
    alice.save()
    assert api.get("/api/me", token=alice_token).status_code == 401


def test_last_use_is_recorded_at_most_once_a_minute(alice, alice_token):
    token = ApiToken.objects.get()
    assert token.last_used_at is None

    assert api_token_authenticate(key=alice_token) == alice
    first = ApiToken.objects.get().last_used_at
    assert first is not None

    assert api_token_authenticate(key=alice_token) == alice
    assert ApiToken.objects.get().last_used_at == first  # no write within the minute

    ApiToken.objects.update(last_used_at=first - timedelta(seconds=61))
    before = timezone.now()
    api_token_authenticate(key=alice_token)
    assert ApiToken.objects.get().last_used_at >= before


def test_a_refused_token_records_nothing(alice, alice_token):
    assert api_token_authenticate(key=alice_token + "x") is None
    assert api_token_authenticate(key="") is None
    assert api_token_authenticate(key="x" * 10_000) is None
    assert ApiToken.objects.get().last_used_at is None


def test_create_api_token_command_prints_a_working_token_once(api, alice, capsys):
    call_command("create_api_token", "alice", "--name", "nightly backup")

    captured = capsys.readouterr()
    key = captured.out.strip()
    assert "nightly backup" in captured.err and "shown once" in captured.err
    assert ApiToken.objects.get().name == "nightly backup"
    assert api.get("/api/me", token=key).json()["username"] == "alice"


def test_create_api_token_command_names_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_api_token", "nobody")
    assert not ApiToken.objects.exists()


def test_token_page_needs_a_login(client):
    response = client.get(reverse("search:api_tokens"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_token_page_creates_a_token_and_shows_it_once(api, alice_client, alice):
    response = alice_client.post(reverse("search:api_tokens"), {"name": "phone app"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    page = response.content.decode()
    assert f'<code class="token" id="new-token">{key}</code>' in page
    assert api.get("/api/me", token=key).status_code == 200

    listing = alice_client.get(reverse("search:api_tokens")).content.decode()
    assert "phone app" in listing and f"{key[:8]}…" in listing
    assert key not in listing


def test_token_page_refuses_a_token_without_a_name(alice_client):
    response = alice_client.post(reverse("search:api_tokens"), {"name": ""})
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_token_page_revokes_only_the_users_own_tokens(api, alice_client, alice, bob, bob_token):
    bobs = ApiToken.objects.get(user=bob)
    mine, key = api_token_create(user=alice, name="old")

    refused = alice_client.post(reverse("search:api_token_revoke", args=[bobs.pk]))
    assert refused.status_code == 404
    assert api.get("/api/me", token=bob_token).status_code == 200

    response = alice_client.post(reverse("search:api_token_revoke", args=[mine.pk]), follow=True)
    assert "Token revoked" in response.content.decode()
    assert list(ApiToken.objects.values_list("user__username", flat=True)) == ["bob"]
    assert api.get("/api/me", token=key).status_code == 401


def test_token_page_posts_need_the_csrf_token(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse("search:api_tokens"), {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_the_nav_links_to_the_token_page(alice_client):
    page = alice_client.get(reverse("search:photo_list")).content.decode()
    assert f'href="{reverse("search:api_tokens")}"' in page
