"""Reliability tests share the UI tests' running app."""
from tests.ui.conftest import running_app  # noqa: F401  (a fixture)
