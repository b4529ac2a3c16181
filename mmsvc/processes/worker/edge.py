"""The worker's edge: every decoded record is checked before it touches state (D24, D31).

A refused record is counted (``mm_messages_rejected_total{topic,reason}``)
and logged, never applied. A refused book message leaves the book unknown
until the next snapshot (quotes pulled by the core). A must-deliver message
(our engine event, an instrument lifecycle event) whose content is bad goes
to mm_dead_letters and is then acknowledged by the caller so the partition
moves on; the symbol's quotes are pulled (PAUSED) and enable/resume are
refused while any dead letter of the symbol is uncleared. The hold is the
table, so it survives restarts; the worker's lease renewal reads it about
every second in its one statement (D26, D30) and hands it here, to learn of
clears and of replays to perform (a replay re-applies the stored bytes
through the worker's own decode-and-apply path). Its writes are fenced by the
worker's lease (D26). A failure of PostgreSQL itself, or a write the fence
refused, propagates: such a message is retried, never dead-lettered (D31).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from mmsvc.adapters import metrics
from mmsvc.adapters.db.dead_letters import DeadLetterRepository
from mmsvc.adapters.kafka import topics, validation
from mmsvc.adapters.zmq.protocol import DataFrame
from mmsvc.domain.model import SymbolState
from mmsvc.domain.trader import SymbolTrader
from mmsvc.processes.worker.store import Sessions

log = logging.getLogger("mmsvc.worker.edge")

BOOK_TOPICS: Final = frozenset({topics.ORDERBOOK_SNAPSHOT, topics.ORDERBOOK_DELTA})
MUST_DELIVER: Final = topics.INSTRUMENT_LIFECYCLE | {topics.ENGINE_EVENTS}


class Edge:
    """Admits or refuses one worker's records; keeps its dead-letter hold."""

    def __init__(
        self,
        symbol: str,
        account_id: str,
        trader: SymbolTrader,
        sessions: Sessions,  # writes fenced by the worker's lease (D26)
        *,
        market_moved: Callable[..., None],
        pause: Callable[[str], None],
        reapply: Callable[[DataFrame], None],
    ) -> None:
        self.symbol = symbol
        self._account_id = account_id
        self._trader = trader
        self._sessions = sessions
        self._market_moved = market_moved
        self._pause = pause  # records PAUSED and flattens, as an operator's pause
        self._reapply = reapply  # the worker's own decode-and-apply path
        self.held = 0  # uncleared dead letters of the symbol, as last read

    # ------------------------------------------------------------------ admit

    def admit(self, frame: DataFrame, record: dict[str, Any]) -> bool:
        """True when ``record`` may be applied; a refusal is counted, logged and acted on."""
        if frame.topic == topics.ENGINE_EVENTS and record.get("account_id") != self._account_id:
            return True  # another account's event: the handler ignores it, it is not ours to judge
        refusal = validation.check(frame.topic, self.symbol, record)
        if refusal is None:
            return True
        self.refuse(frame, refusal.reason, refusal.detail)
        return False

    def failed(self, frame: DataFrame, exc: Exception) -> None:
        """A handler raised on a record that passed the wire rules: refused as if it had not."""
        log.error(
            "message could not be applied",
            exc_info=exc,
            extra={"symbol": self.symbol, "topic": frame.topic, "offset": frame.offset},
        )
        self.refuse(frame, "apply_error", f"{type(exc).__name__}: {exc}"[:500])

    def refuse(self, frame: DataFrame, reason: str, detail: str) -> None:
        """Count and log; a book goes unknown, a must-deliver message is dead-lettered."""
        metrics.message_rejected(frame.topic, reason)
        log.warning(
            "message refused",
            extra={
                "symbol": self.symbol,
                "topic": frame.topic,
                "partition": frame.partition,
                "offset": frame.offset,
                "reason": reason,
                "detail": detail,
            },
        )
        if frame.topic in BOOK_TOPICS:
            # The book may have missed what this message said: distrust it until a snapshot (D12).
            self._trader.book.mark_unknown(f"refused {frame.topic}: {reason}")
            self._market_moved(force=True)
        elif frame.topic in MUST_DELIVER:
            self.dead_letter(frame, reason, detail)

    # ----------------------------------------------------------- dead letters

    def dead_letter(self, frame: DataFrame, reason: str, detail: str) -> None:
        """Store the message and hold the symbol; a database failure propagates (retried)."""
        with self._sessions.begin() as session:
            repo = DeadLetterRepository(session)
            row_id = repo.add(
                symbol=self.symbol,
                topic=frame.topic,
                partition=frame.partition,
                offset=frame.offset,
                key=self.symbol,
                value=frame.value,
                reason=reason,
                detail=detail,
            )
            self.held = repo.uncleared_count(self.symbol)
        metrics.set_dead_letters(self.symbol, self.held)
        log.error(
            "dead letter stored; quotes pulled until an operator clears it",
            extra={
                "symbol": self.symbol,
                "topic": frame.topic,
                "offset": frame.offset,
                "dead_letter_id": row_id,
                "reason": reason,
            },
        )
        self._pull(f"dead letter: {frame.topic} {reason}")

    def holding(self) -> bool:
        """True while a dead letter of the symbol is uncleared (read now, not cached)."""
        with self._sessions() as session:
            self.held = DeadLetterRepository(session).uncleared_count(self.symbol)
        metrics.set_dead_letters(self.symbol, self.held)
        return self.held > 0

    def on_renewal(self, held: int | None, replays_pending: bool) -> None:
        """The hold as the lease renewal read it (about every second): pull quotes while
        held, perform pending replays. ``held`` None: not read this time (kept as it was)."""
        if held is not None:
            self.held = held
            metrics.set_dead_letters(self.symbol, held)
        if self.held:
            self._pull("dead letter")
        if replays_pending:
            self.replay()

    def replay(self) -> None:
        """Re-apply the dead letters cleared by a replay, oldest first, each marked replayed."""
        with self._sessions() as session:
            repo = DeadLetterRepository(session)
            replays = repo.pending_replays(self.symbol)
            self.held = repo.uncleared_count(self.symbol)
        metrics.set_dead_letters(self.symbol, self.held)
        for row in replays:
            log.info(
                "replaying a cleared dead letter",
                extra={"symbol": self.symbol, "dead_letter_id": row.id, "topic": row.topic},
            )
            # The real path: decode, the wire rules, the handler; a new refusal is a new row.
            self._reapply(DataFrame(row.topic, row.value, row.partition, row.offset, 0, False))
            with self._sessions.begin() as session:
                DeadLetterRepository(session).mark_replayed(row.id)

    def _pull(self, reason: str) -> None:
        if self._trader.state is SymbolState.ACTIVE:
            self._pause(reason)
