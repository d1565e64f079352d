"""Upload and search are limited per user and per address, failed logins per (name, address),
each with a clear 429."""

import uuid

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

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


@pytest.fixture
def failure_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def test_failed_logins_lock_out_that_name_from_that_address_only(
    client, staff, failure_limit, monkeypatch
):
    for _ in range(failure_limit - 1):
        assert log_in(client, "staff", ip="10.6.6.6").status_code == 200  # the form, an error
    refused = log_in(client, "staff", ip="10.6.6.6")  # the third failure locks it
    assert refused.status_code == 429
    assert refused["Retry-After"] == "900"
    assert "Too many failed logins; try again in 900 seconds." in refused.content.decode()
    # Even the right password waits, from the attacker's address.
    assert log_in(client, "staff", "staff-password-1", ip="10.6.6.6").status_code == 429
    assert "_auth_user_id" not in client.session

    # Staff from their own address still get in, on the site and on the admin's login.
    assert log_in(client, "staff", "staff-password-1", ip="10.0.0.9").status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)
    client.logout()
    admin = client.post(
        reverse("admin:login"),
        {"username": "staff", "password": "staff-password-1"},
        REMOTE_ADDR="10.0.0.10",
    )
    assert admin.status_code == 302 and client.session["_auth_user_id"] == str(staff.pk)


def test_successful_logins_do_not_count(client, alice, failure_limit):
    for _ in range(failure_limit * 3):
        assert log_in(client, "alice", "alice-password-1").status_code == 302
        client.logout()
    assert log_in(client, "alice").status_code == 200  # one failure: the form again
    assert log_in(client, "alice", "alice-password-1").status_code == 302


def test_a_lockout_ends_after_its_cool_off(client, alice, failure_limit, settings):
    for _ in range(failure_limit):
        log_in(client, "alice")
    assert log_in(client, "alice", "alice-password-1").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME)
    assert log_in(client, "alice", "alice-password-1").status_code == 302


def test_the_login_page_itself_is_not_counted(client, failure_limit):
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
