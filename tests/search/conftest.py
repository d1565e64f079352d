import pytest

from search.accounts.services import api_token_create
from tests.search.api.api_schema import ApiClient


@pytest.fixture
def api(client) -> ApiClient:
    """The test client, checking every API answer against the app's OpenAPI schema."""
    return ApiClient(client)


@pytest.fixture
def alice_token(alice) -> str:
    return api_token_create(user=alice, name="alice's script")[1]


@pytest.fixture
def bob_token(bob) -> str:
    return api_token_create(user=bob, name="bob's script")[1]


@pytest.fixture
def staff_token(staff) -> str:
    return api_token_create(user=staff, name="staff script")[1]
