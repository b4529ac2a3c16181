"""Shared fixtures: each concern lives in its own plugin module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.db",
    "tests.fixtures.exchange",
    "tests.fixtures.kafka",
    "tests.fixtures.prometheus",
    "tests.fixtures.pgbouncer",
    "tests.fixtures.postgres_server",
]
