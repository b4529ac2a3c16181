"""The emergency kill the admin process carries out itself when the supervisor cannot (D7).

The records and cancels are the shared kill switch's (:mod:`mmsvc.processes.global_kill`),
the same routine the supervisor uses, so the two can never disagree on what a
kill writes; this module only binds it to the admin process's adapters.
"""

from __future__ import annotations

from mmsvc.adapters.db.records import RiskTrigger
from mmsvc.processes.admin.context import AdminContext
from mmsvc.processes.global_kill import Kill, KillOutcome, KillSwitch


def kill(context: AdminContext, symbol: str | None, detail: str, actor: str) -> KillOutcome:
    """Kill every symbol (symbol None) or one, without the supervisor; answers when done."""
    switch = KillSwitch(
        context.transaction, context.status, context.orders(), context.settings.shadow_mode
    )
    return switch.kill(Kill(RiskTrigger.MANUAL, detail, actor, symbol))
