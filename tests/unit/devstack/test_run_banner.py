"""`make run`'s banner says which demo symbols do not quote and why (a halt needs a reset)."""

from pathlib import Path

from mmsvc.devstack.run import _banner

ENV = {"HTTP_PORT": "8080", "METRICS_PORT": "9090", "PROMETHEUS_URL": "http://127.0.0.1:9091"}


def test_a_symbol_left_halted_is_named_with_how_to_reset_it() -> None:
    refused = {"BTCUSDT": "HALTED: symbol is HALTED: reset it first"}
    banner = _banner(ENV, Path("/tmp/run"), refused)
    assert "simulated exchange: ETHUSDT, SOL-PERP (enabled" in banner
    assert "NOT quoting BTCUSDT: HALTED: symbol is HALTED: reset it first" in banner
    assert "localhost:8080/v1/mm/reset" in banner


def test_all_enabled_says_nothing_more() -> None:
    banner = _banner(ENV, Path("/tmp/run"), {})
    assert "simulated exchange: BTCUSDT, ETHUSDT, SOL-PERP (enabled" in banner
    assert "NOT quoting" not in banner
