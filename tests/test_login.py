"""The login over HTTP that the whole-app tests and ``bench/load.py`` share."""

import pytest
import requests

from tests.login import LoginFailed, log_in


@pytest.mark.django_db(transaction=True)
def test_a_session_is_logged_in_through_the_login_form(live_server, alice):
    session = log_in(
        requests.Session(), live_server.url, username="alice", password="alice-password-1"
    )

    home = session.get(f"{live_server.url}/", allow_redirects=False, timeout=30)
    assert (home.status_code, home.headers.get("Location")) == (200, None)


@pytest.mark.django_db(transaction=True)
def test_a_refused_login_raises_and_leaves_the_session_logged_out(live_server, alice):
    session = requests.Session()
    with pytest.raises(LoginFailed, match="login as alice failed: 200"):
        log_in(session, live_server.url, username="alice", password="wrong")

    home = session.get(f"{live_server.url}/", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and home.headers["Location"].startswith("/accounts/login/")
