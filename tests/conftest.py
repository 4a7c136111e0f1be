"""Root fixtures: the servers the suite starts itself, once per test process.

Each xdist worker process starts its own embedded Redis with search and JSON (and cluster)
on first use, so workers never share data; a test that uses one gets it flushed
(``FLUSHALL SYNC``) first. A plain Redis and PostgreSQL come from ``servers.py``: the ones
``RELAYGRAPH_TEST_REDIS_URL`` / ``RELAYGRAPH_TEST_POSTGRES_URL`` name, else embedded ones.

The verbatim run of an external copy of the lesson (``test_lesson_verbatim.py`` and
``persistence/test_lesson_verbatim_on_savers.py``) is collected only when
``RELAYGRAPH_LESSON`` names the file; otherwise the summary says once that it did not run.
Likewise the tests of the RabbitMQ topologies are skipped when there is no RabbitMQ to use
(``servers.rabbitmq_url``), and the summary counts them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest
import servers

from relaygraph.persistence.redis_server import (
    EmbeddedCluster,
    EmbeddedRedis,
    shared_cluster,
    shared_server,
)


@pytest.fixture(scope="session")
def redis_search_server() -> EmbeddedRedis:
    """This worker's embedded valkey-server with RediSearch and RedisJSON."""
    return shared_server()


@pytest.fixture(scope="session")
def redis_search_url(redis_search_server: EmbeddedRedis) -> str:
    """``redis://`` URL of this worker's embedded server (flushed before every test using it)."""
    return redis_search_server.url


@pytest.fixture(scope="session")
def plain_redis_url() -> str:
    """A Redis without modules (``$RELAYGRAPH_TEST_REDIS_URL`` or an embedded one).

    Not flushed: it may be a server others use, so tests keep to their own key prefix.
    """
    return servers.plain_redis_url()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL database tests may create schemas in (``$RELAYGRAPH_TEST_POSTGRES_URL``
    or this process's embedded cluster, database ``test``)."""
    return servers.postgres_url()


@pytest.fixture(scope="session")
def redis_cluster() -> EmbeddedCluster:
    """This worker's embedded 3-master Redis Cluster (flushed before every test using it)."""
    return shared_cluster()


@pytest.fixture(autouse=True)
def _clean_embedded_redis(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give every test that uses an embedded server an empty database."""
    names = set(request.fixturenames)
    if names & {"redis_search_url", "redis_search_server"}:
        request.getfixturevalue("redis_search_server").flush()
    if "redis_cluster" in names:
        request.getfixturevalue("redis_cluster").flush()
    yield


# -- the verbatim lesson check: only when RELAYGRAPH_LESSON names the lesson --------------

LESSON_VARIABLE = "RELAYGRAPH_LESSON"
VERBATIM_MODULES = ("test_lesson_verbatim.py", "persistence/test_lesson_verbatim_on_savers.py")

collect_ignore = [] if os.environ.get(LESSON_VARIABLE) else list(VERBATIM_MODULES)


def pytest_configure(config: pytest.Config) -> None:
    servers.opted_out()  # an unknown name in RELAYGRAPH_TEST_WITHOUT stops the run at once


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not os.environ.get(LESSON_VARIABLE):
        terminalreporter.write_line(
            f"lesson: the verbatim check of an external copy of the lesson did not run "
            f"({LESSON_VARIABLE} is not set; the lesson's behaviours ran in test_lesson.py)"
        )
    if missing := _skipped_for(terminalreporter, servers.RABBITMQ_MISSING):
        terminalreporter.write_line(
            f"rabbitmq: {len(missing)} test(s) of the RabbitMQ topologies did not run: {missing[0]}"
        )
    if off := servers.opted_out():
        terminalreporter.write_line(
            f"backends turned off by {servers.OPT_OUT_VARIABLE}: {', '.join(sorted(off))}"
        )
    # Any other skip (e.g. a tool missing from PATH) is named too: no skip goes unsaid.
    others = Counter(
        reason
        for reason in _skipped_for(terminalreporter, "")
        if not reason.startswith(servers.RABBITMQ_MISSING)
        and servers.OPT_OUT_VARIABLE not in reason
    )
    for reason, count in sorted(others.items()):
        terminalreporter.write_line(f"skipped: {count} test(s): {reason}")


def _skipped_for(terminalreporter: pytest.TerminalReporter, reason: str) -> list[str]:
    """The reasons of the tests skipped with a reason starting with ``reason`` (the reports
    of every xdist worker reach the controller that prints the summary)."""
    found = []
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        text = text.removeprefix("Skipped: ")
        if text.startswith(reason):
            found.append(text)
    return found
