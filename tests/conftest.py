"""Fixtures shared by the end-to-end test modules."""

import pytest


@pytest.fixture
def port(server) -> int:
    """The port of the module's `server` fixture (a tests.helpers.ServerProcess)."""
    return server.port
