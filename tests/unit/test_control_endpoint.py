"""D24: control endpoints are ipc:// in a 0700 directory, or tcp:// only with CURVE keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mmsvc.adapters.zmq.protocol import private_dir
from mmsvc.config import ConfigError, load_settings
from tests.unit.test_config import BASE


def test_the_default_control_endpoint_is_ipc_in_the_run_directory(tmp_path: Path) -> None:
    settings = load_settings({**BASE, "MMSVC_RUN_DIR": str(tmp_path)})
    assert settings.control_endpoint == f"ipc://{tmp_path}/control.sock"


def test_a_tcp_control_endpoint_without_curve_keys_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"MMSVC_CONTROL_ENDPOINT.*CURVE"):
        load_settings({**BASE, "MMSVC_CONTROL_ENDPOINT": "tcp://0.0.0.0:5555"})


def test_a_tcp_control_endpoint_with_curve_keys_is_accepted(tmp_path: Path) -> None:
    env = {
        **BASE,
        "MMSVC_CONTROL_ENDPOINT": "tcp://127.0.0.1:5555",
        "MMSVC_CONTROL_CURVE_DIR": str(tmp_path),
    }
    assert load_settings(env).control_curve_dir == tmp_path


def test_another_transport_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"ipc:// or tcp://"):
        load_settings({**BASE, "MMSVC_CONTROL_ENDPOINT": "ws://127.0.0.1:5555"})


def test_a_socket_directory_is_created_private_and_an_open_one_tightened(tmp_path: Path) -> None:
    created = private_dir(tmp_path / "run" / "sockets")
    assert stat.S_IMODE(created.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    private_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700
