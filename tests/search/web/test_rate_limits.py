"""Login, upload and search are limited per user and per address, with a clear 429."""

import uuid

import pytest
from django.urls import reverse

from search.models import Photo
from search.web import rate_limits
from tests.conftest import encode, make_image, upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limits(settings, monkeypatch):
    """Small limits, fresh counters (a key prefix of this test's own) and a clock that stands
    still, so that no window ends in the middle of a test."""
    settings.MEDIASEARCH_RATE_LIMITS_ENABLED = True
    settings.MEDIASEARCH_RATE_LIMITS = {
        "login": {"per_user": 3, "per_ip": 5, "window": 300},
        "upload": {"per_user": 2, "per_ip": 100, "window": 60},
        "search": {"per_user": 3, "per_ip": 4, "window": 60},
    }
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }
    monkeypatch.setattr(rate_limits, "_now", lambda: 1_200_020.0)
    return settings.MEDIASEARCH_RATE_LIMITS


def log_in(client, username: str, password: str = "wrong", ip: str = "10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_login_is_limited_per_account_name_and_per_address(client, alice):
    for _ in range(3):
        assert log_in(client, "alice").status_code == 200  # the form again, with an error
    refused = log_in(client, "alice", password="alice-password-1")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "280"  # the window started 20 s ago
    assert "Too many login attempts; try again in 280 seconds." in refused.content.decode()
    assert "_auth_user_id" not in client.session  # even the right password waits

    # The same account from another address is limited too; other accounts from a fresh
    # address are not, until that address has tried five times.
    assert log_in(client, "alice", ip="10.0.0.2").status_code == 429
    for name in ("carol", "dave", "erin", "frank", "grace"):
        assert log_in(client, name, ip="10.0.0.3").status_code == 200
    assert log_in(client, "heidi", ip="10.0.0.3").status_code == 429


def test_the_login_page_itself_is_not_counted(client):
    for _ in range(10):
        assert client.get(reverse("login")).status_code == 200


def test_web_upload_is_limited_per_user(alice_client, alice, bob, client):
    def upload(c):
        return c.post(
            reverse("search:upload"), {"photos": upload_file("a.jpg", encode(make_image()))}
        )

    assert [upload(alice_client).status_code for _ in range(2)] == [302, 302]
    refused = upload(alice_client)
    assert refused.status_code == 429 and refused["Retry-After"] == "40"
    assert "Too many uploads" in refused.content.decode()
    assert Photo.objects.filter(owner=alice).count() == 1  # the second was a duplicate
    client.force_login(bob)
    assert upload(client).status_code == 302  # bob has his own count


def test_search_is_limited_per_user_and_per_address_on_web_and_api(alice_client, api, alice_token):
    home = reverse("search:home")
    assert alice_client.get(home).status_code == 200  # the empty search page does not count
    assert alice_client.get(home, {"q": "red"}).status_code == 200
    response = api.get("/api/search", token=alice_token, query={"q": "red"})
    assert response.status_code == 200
    assert alice_client.get(home, {"q": "blue"}).status_code == 200
    # The fourth search of alice: web and API count together, per user.
    refused = api.get("/api/search", token=alice_token, query={"q": "red"})
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many searches; try again in 40 seconds."}
    assert refused["Retry-After"] == "40"
    assert alice_client.get(home, {"q": "green"}).status_code == 429


def test_a_search_from_a_busy_address_is_refused_whoever_asks(client, alice, bob, staff):
    for user in (alice, bob, staff):
        client.force_login(user)
        assert client.get(reverse("search:home"), {"q": "x"}).status_code == 200
    client.force_login(alice)
    assert client.get(reverse("search:home"), {"q": "x"}).status_code == 200
    client.force_login(bob)
    assert client.get(reverse("search:home"), {"q": "x"}).status_code == 429  # 5th from here


def test_limits_can_be_switched_off(settings, alice_client):
    settings.MEDIASEARCH_RATE_LIMITS_ENABLED = False
    for _ in range(6):
        assert alice_client.get(reverse("search:home"), {"q": "x"}).status_code == 200


def test_an_unreachable_cache_lets_requests_through(settings, alice_client, caplog):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    for _ in range(5):
        assert alice_client.get(reverse("search:home"), {"q": "x"}).status_code == 200
    assert "rate limit not applied, the cache is unavailable" in caplog.text
