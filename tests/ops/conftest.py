import asyncio

import pytest

from tests.support import Seeded, seed_database


@pytest.fixture
def seeded(database_url: str) -> Seeded:
    """An admin (password and API token) and an enrollment secret in the test database."""
    return asyncio.run(seed_database(database_url))
