"""A decimal and a timestamp as JSON carries them out of the process, as pydantic field types.

A response model declares ``DecimalText`` or ``Timestamp`` and holds the
value itself (a ``Decimal``, a ``datetime``); the text is written only when
the model is dumped as JSON, by the one formatter (:func:`decimal_text`,
issue 11) and ``datetime.isoformat`` (the offset as ``+00:00``, never ``Z``,
as the API has always written it). The JSON Schema states that text.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

from mmsvc.domain.decimals import decimal_text

DECIMAL_TEXT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
"""What :func:`decimal_text` writes: plain, signed when negative, no exponent."""

DecimalText = Annotated[
    Decimal,
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_TEXT_PATTERN}),
]
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
