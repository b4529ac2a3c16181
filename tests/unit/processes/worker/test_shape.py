"""The worker's one-way shape: nothing under processes/worker imports its composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import mmsvc.processes.worker

WORKER = Path(mmsvc.processes.worker.__file__).parent


def test_no_worker_module_imports_main() -> None:
    offenders = []
    for path in WORKER.glob("*.py"):
        if path.name in ("main.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "mmsvc.processes.worker.main":
                offenders.append(path.name)
    assert offenders == []


def test_the_symbols_state_is_written_only_through_the_state_machine() -> None:
    offenders = [
        path.name
        for path in WORKER.glob("*.py")
        if path.name != "trader.py" and ".state = " in path.read_text()
    ]
    assert offenders == []
