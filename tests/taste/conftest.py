"""Fixtures of the taste tests."""
from __future__ import annotations

import pytest

from tests.taste.taste_data import PlantedRatings, planted_ratings


@pytest.fixture(scope="session")
def planted() -> PlantedRatings:
    return planted_ratings()
