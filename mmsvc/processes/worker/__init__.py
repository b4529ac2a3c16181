"""One process per symbol (ARCHITECTURE D1): its command line is the supervisor's to build.

``mmsvc-worker --symbol SYMBOL [--handed-back]``. ``HANDED_BACK_ARG`` says the
group gave the symbol back to the supervisor that handed it over at a
revocation, with no process restarted in between: the worker keeps the
symbol's recorded state if its lease ended within TAKEOVER_WINDOW (D28, D29).
"""

HANDED_BACK_ARG = "--handed-back"
