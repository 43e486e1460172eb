"""The Calls fixtures (an app with the Calls test app, and its API client) for these tests."""

from tests.calls.conftest import api, settings  # noqa: F401
