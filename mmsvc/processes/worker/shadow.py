"""Shadow mode: the same decisions, no Order Service call, simulated quotes published.

ARCHITECTURE D18: a shadow instance never calls the Order Service (start-up
cancels and kills included) and marks everything it publishes. The quote of
each decision goes to ``mm.quote.simulated.v1``, one record per level, a side
null where the formula or a limit dropped it.
"""

from __future__ import annotations

import logging

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec, EncodeError
from mmsvc.adapters.kafka.producer import KafkaPublisher
from mmsvc.domain.decimals import decimal_text
from mmsvc.domain.model import PriceSize, Quote

log = logging.getLogger(__name__)


def _side(side: PriceSize | None) -> tuple[str | None, str | None]:
    if side is None:
        return None, None
    return decimal_text(side.price), decimal_text(side.quantity)


def simulated_records(quote: Quote) -> list[dict[str, object]]:
    """One ``mm.quote.simulated.v1`` record per level of the quote."""
    records: list[dict[str, object]] = []
    for level in quote.levels:
        bid_price, bid_size = _side(level.bid)
        ask_price, ask_size = _side(level.ask)
        records.append(
            {
                "symbol": quote.symbol,
                "level": level.level,
                "bid_price": bid_price,
                "bid_size": bid_size,
                "ask_price": ask_price,
                "ask_size": ask_size,
                "mid": decimal_text(quote.mid),
                "inventory_usdt": decimal_text(quote.inventory_usdt),
                "spread_bps": decimal_text(quote.spread_bps),
                "ts_ms": quote.ts_ms,
            }
        )
    return records


class ShadowQuotes:
    """Publishes each new quote instead of placing it."""

    def __init__(self, codec: AvroCodec, publisher: KafkaPublisher) -> None:
        self._codec = codec
        self._publisher = publisher
        self._last: Quote | None = None

    def publish(self, quote: Quote | None) -> bool:
        """Publish when the quote changed (not on every timer tick); True when published."""
        if quote is None or (self._last is not None and quote.levels == self._last.levels):
            return False
        self._last = quote
        for record in simulated_records(quote):
            try:
                value = self._codec.encode(topics.QUOTE_SIMULATED, record)
            except EncodeError:
                log.exception("simulated quote does not match its schema")
                return False
            self._publisher.send_nowait(topics.QUOTE_SIMULATED, quote.symbol, value)
        return True
