"""Forked workers (ARCHITECTURE D27): adopted and reaped by the supervisor, dying with it.

A stand-in supervisor (``template_host``) drives the real WorkerTemplate:
the forked worker's parent is the supervisor, not the template (a child
subreaper), so its death is reaped like any child's (D2); the template dying
leaves the workers running and is started again on the next fork; and when the
supervisor dies without a word, its forked workers die too (D17's
parent-death rule).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

SLEEPY = "tests.integration.processes.sleepy_worker"


class Host:
    """The stand-in supervisor process and a line-based conversation with it."""

    def __init__(self, module: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.processes.template_host", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, line: str) -> dict[str, Any]:
        if self.proc.stdin is None or self.proc.stdout is None:
            raise RuntimeError("the host has no pipes")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def host() -> Iterator[Host]:
    started = Host(SLEEPY)
    yield started
    started.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_a_forked_worker_is_the_supervisors_child_and_its_death_is_reaped(host: Host) -> None:
    """D2 needs the death noticed: the worker is adopted by the supervisor, not the template."""
    worker = host.ask("fork AAAUSDT")
    assert worker["forked"]
    assert _parent(worker["pid"]) == host.proc.pid
    assert host.ask("poll") == {"AAAUSDT": None}
    os.kill(worker["pid"], signal.SIGKILL)
    wait_for(lambda: host.ask("poll") == {"AAAUSDT": -9}, 10, "the SIGKILLed worker reaped")


def test_the_template_dying_leaves_workers_running_and_it_is_started_again(host: Host) -> None:
    first = host.ask("fork AAAUSDT")
    assert host.ask("kill-template")["killed"] == first["template"]
    wait_for(lambda: not _alive(first["template"]), 10, "the template gone")
    second = host.ask("fork BBBUSDT")
    assert second["forked"]
    assert second["template"] != first["template"]
    assert _alive(first["pid"])
    assert host.ask("poll") == {"AAAUSDT": None, "BBBUSDT": None}


def test_forked_workers_die_with_their_supervisor(host: Host) -> None:
    """D17: a worker whose supervisor is gone must not live on (PDEATHSIG follows it)."""
    worker = host.ask("fork AAAUSDT")
    template = worker["template"]
    host.proc.kill()  # no chance to clean up
    host.proc.wait(10)
    wait_for(lambda: not _alive(worker["pid"]), 10, "the orphaned forked worker gone")
    wait_for(lambda: not _alive(template), 10, "the template gone")


def test_a_template_that_cannot_start_falls_back_to_fresh_interpreters() -> None:
    """D27: forking is an optimisation; a broken template never stops workers from starting."""
    broken = Host("tests.integration.processes.no_such_module")
    try:
        worker = broken.ask("fork AAAUSDT")
        assert not worker["forked"]
        assert worker["template_starts"] == 1  # it gave up at the first exit: no restart storm
        assert broken.ask("poll") == {"AAAUSDT": None}
    finally:
        broken.close()
