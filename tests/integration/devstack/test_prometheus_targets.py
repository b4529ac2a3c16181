"""The dev stack's Prometheus scrapes each local host as it starts, labelled with its name.

``make run HOSTS=3`` and the chaos run start hosts after Prometheus; before,
it scraped only the one-host METRICS_PORT, so no host's metrics reached it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mmsvc.devstack import prometheus
from tests.fixtures.prometheus import Prometheus
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE mm_demo gauge\nmm_demo 1\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A metrics endpoint on a free port, as a host's METRICS_PORT serves one."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _by_host(server: Prometheus) -> dict[str, str]:
    """host label -> health, of the active targets that carry one."""
    return {t["labels"]["host"]: t["health"] for t in server.targets() if "host" in t["labels"]}


def test_a_host_started_later_is_scraped_with_its_name_and_unlisted_when_it_leaves(
    prometheus_factory: Callable[[str], Prometheus], endpoint: str
) -> None:
    server = prometheus_factory("127.0.0.1:9")  # the one-host target, nobody there

    prometheus.scrape(server.run_dir, endpoint, {"host": "h2"})
    wait_for(lambda: _by_host(server).get("h2") == "up", 30, "h2 scraped and up")
    assert server.query('mm_demo{host="h2"}')

    # Prometheus re-reads the file on each change (at most every 5 s: its discovery's
    # pace); that it follows the file is shown above, so the removal is read from it.
    prometheus.unscrape(server.run_dir, endpoint)
    listed = prometheus.targets_file(server.run_dir).read_text()
    assert endpoint not in listed
    assert "127.0.0.1:9" in listed
