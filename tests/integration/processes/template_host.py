"""A minimal supervisor for the template tests: a WorkerTemplate driven line by line.

stdin takes ``fork SYMBOL``, ``poll``, ``kill-template``; each answer is one
JSON line on stdout. Run as ``python -m tests.integration.processes.template_host MODULE``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from mmsvc.processes.supervisor.pool import ChildProcess, fresh_interpreter
from mmsvc.processes.supervisor.template import WorkerTemplate


class CountingTemplate(WorkerTemplate):
    """A WorkerTemplate that counts its starts, so a test sees restarts without timing them."""

    starts = 0

    def start(self) -> bool:
        self.starts += 1
        return super().start()


def main() -> None:
    """Serve commands until stdin closes."""
    fresh = fresh_interpreter(lambda _s: [sys.executable, "-c", "import time; time.sleep(300)"], {})
    template = CountingTemplate(os.environ, fresh, module=sys.argv[1])
    children: dict[str, ChildProcess] = {}
    for line in sys.stdin:
        words = line.split()
        answer: dict[str, object]
        if words[0] == "fork":
            starts = template.starts
            while (child := template(words[1])) is None:
                time.sleep(0.01)
            children[words[1]] = child
            answer = {
                "pid": child.pid,
                "forked": type(child).__name__ == "ForkedChild",
                "template": template.pid,
                "template_starts": template.starts - starts,
            }
        elif words[0] == "poll":
            answer = {symbol: child.poll() for symbol, child in children.items()}
        elif words[0] == "kill-template":
            pid = template.pid
            if pid is not None:
                os.kill(pid, 9)
            answer = {"killed": pid}
        else:
            answer = {"error": line}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
