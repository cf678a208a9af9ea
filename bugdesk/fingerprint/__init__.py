"""Report fingerprints for deduplication: a versioned registry of frozen grouping algorithms.

``compute(signal)`` turns what a report offers (stack trace, frames, exception, route,
component, title) into a `Fingerprint`: a stable hash plus the human-readable signature that
was hashed. Algorithms are versioned like bugsink's grouping mechanisms: a released version
(``v1``) never changes its output; an improvement is a new module (``v2.py``) registered in
`ALGORITHMS`, and `CURRENT` moves to it. Stored fingerprints keep their algorithm name.

Pure functions only: no database, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bugdesk.fingerprint.normalize import (
    component_from_frames,
    normalize_message,
    repo_path_hints,
    route_template,
)
from bugdesk.fingerprint.traceback import (
    ExceptionInfo,
    Frame,
    ParsedTrace,
    frames_from_list,
    parse_traceback,
)

__all__ = [
    "ALGORITHMS",
    "CURRENT",
    "ExceptionInfo",
    "Fingerprint",
    "Frame",
    "ParsedTrace",
    "Signal",
    "component_from_frames",
    "compute",
    "frames_from_list",
    "normalize_message",
    "parse_traceback",
    "repo_path_hints",
    "route_template",
]


@dataclass(frozen=True, slots=True)
class Signal:
    """What a report offers for grouping; every field is optional."""

    title: str | None = None
    description: str | None = None
    stacktrace: str | None = None
    frames: tuple[Frame, ...] | None = None  # structured frames (gen-2 / Sentry), outermost first
    exception_type: str | None = None
    exception_message: str | None = None
    component: str | None = None
    route: str | None = None  # template or concrete path, maybe "POST /x?y=1"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A grouping key and what went into it."""

    hash: str  # 32 hex characters of sha256(signature)
    algorithm: str  # "v1"
    kind: str  # "stack" | "message" | "title"
    signature: str  # the hashed text, one item per line, for humans
    exception_type: str | None
    frames: tuple[str, ...]  # frame keys that went into the hash, outermost first
    component: str | None  # normalised component, None when not part of the hash
    route: str | None  # route template, None when not part of the hash


# v1 builds the dataclasses above, so it is imported once they exist.
from bugdesk.fingerprint import v1  # noqa: E402

ALGORITHMS: dict[str, Callable[[Signal], Fingerprint]] = {"v1": v1.fingerprint}
CURRENT = "v1"


def compute(signal: Signal, algorithm: str = CURRENT) -> Fingerprint:
    """Fingerprint `signal` with the named algorithm (default: `CURRENT`)."""
    try:
        fn = ALGORITHMS[algorithm]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise ValueError(f"unknown fingerprint algorithm {algorithm!r}; known: {known}") from None
    return fn(signal)
