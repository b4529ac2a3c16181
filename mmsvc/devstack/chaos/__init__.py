"""``make chaos``: three local hosts, a dozen ACTIVE symbols, disruptions, then the checks.

Lives in mmsvc.devstack (not tests/) because it is an operator-facing tool
built on the dev stack's own host machinery (mmsvc.devstack.hosts, run.py),
started by make like ``make run``, and its checker must run alone on a
finished run's data; it is not a pytest test, and its unit tests live under
tests/unit/devstack. driver.py disrupts, checker.py holds the pure checks,
check.py loads a run's data and reports.
"""
