"""Logging in to a running MediaSearch over HTTP, as a browser does: the login page's CSRF
cookie, then the form. Plain ``requests``, no pytest: ``bench/`` uses it too."""

from __future__ import annotations

import requests


class LoginFailed(RuntimeError):
    pass


def log_in(
    session: requests.Session, base_url: str, *, username: str, password: str
) -> requests.Session:
    """``session``, logged in as ``username``; raises ``LoginFailed`` unless the app answers
    with its redirect to the home page."""
    login = f"{base_url}/accounts/login/"
    session.get(login, timeout=30).raise_for_status()
    response = session.post(
        login,
        data={"username": username, "password": password,
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": login},
        allow_redirects=False,
        timeout=30,
    )  # fmt: skip
    if (response.status_code, response.headers.get("Location")) != (302, "/"):
        raise LoginFailed(f"login as {username} failed: {response.status_code}")
    return session
