"""Sentry-compatible ingestion: envelopes and events from the official SDKs become bugdesk reports.

`envelope` parses request bodies (decompression, envelope framing, limits); `event` maps an error
or message event to report data. Both are pure; the HTTP side is `bugdesk.api.routes.sentry`.
"""

from bugdesk.sentry.envelope import Envelope, EnvelopeError, Item, Limits, TooLarge, decode_body, parse_envelope
from bugdesk.sentry.event import event_id_of, report_from_event

__all__ = [
    "Envelope",
    "EnvelopeError",
    "Item",
    "Limits",
    "TooLarge",
    "decode_body",
    "event_id_of",
    "parse_envelope",
    "report_from_event",
]
