"""mmsvc: the TradeX market maker service."""

__version__ = "0.1.0"
