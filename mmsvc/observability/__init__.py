"""Logs and traces of every mmsvc process (metrics live in mmsvc.adapters.metrics)."""
