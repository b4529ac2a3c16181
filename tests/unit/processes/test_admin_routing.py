"""Merging the answers of several hosts' supervisors to one reset or flatten (D28)."""

from __future__ import annotations

from typing import Any

from mmsvc.processes.admin.routing import merge


def test_one_host_that_reset_something_makes_the_whole_answer_200() -> None:
    here = (409, {"ok": [], "refused": {}, "no_answer": [], "global_flag_cleared": True})
    there = (200, {"ok": ["ETHUSDT"], "refused": {"SOL-PERP": "loss still over"}, "no_answer": []})
    status, body = merge([here, there], [])
    assert status == 200
    assert body == {
        "ok": ["ETHUSDT"],
        "refused": {"SOL-PERP": "loss still over"},
        "no_answer": [],
        "global_flag_cleared": True,
    }


def test_a_silent_host_lists_its_symbols_as_not_answering() -> None:
    here = (200, {"ok": ["BTCUSDT"], "refused": {}, "no_answer": []})
    status, body = merge([here], ["ETHUSDT", "SOL-PERP"])
    assert status == 200
    assert body["no_answer"] == ["ETHUSDT", "SOL-PERP"]


def test_when_nothing_applied_anywhere_this_hosts_refusal_stands() -> None:
    error = {"code": "KAFKA_LAG", "message": "consumer lag 12.0s is still over the threshold"}
    here = (409, {"error": error})
    there: tuple[int, dict[str, Any]] = (409, {"ok": [], "refused": {}, "no_answer": []})
    status, body = merge([here, there], [])
    assert status == 409
    assert body["error"] == error
