"""Grouping algorithm v1 (frozen once released: change nothing that alters a hash; add v2.py).

Kinds, tried in order:

``stack``   exception type (bare class name) + in-app frame keys. A report has a stack when it
            carries structured frames, or a traceback in its stack-trace field or, failing
            that, pasted into its description.
``message`` no frames, but an exception type and/or message (given, or an ``ErrorType: msg``
            line in the description or title): type + normalised message + component + route.
``title``   neither: normalised title (the description's first line when there is no title)
            + component + route template. The route goes beyond the design's "title +
            component": generic titles ("error when placing an order") recur across bugs, and
            the route kept them apart (prose precision 0.86 -> 0.90 on a held-out-style store)
            at no cost in recall.

Stack choices, measured with benchmarks/dedup_quality.py (B-cubed P/R on stack reports of the
shared 5k sample and a generated 20k store; both 1.000/1.000 with the choices below):

* Frame key = ``<module basename>:<function>``. Line numbers move with every edit; deploy,
  virtualenv, laptop and container prefixes differ per host; modules move into subpackages
  between releases. The basename survives all of that (a repository-relative path instead:
  recall 0.967/0.963, because of the moves); the chain of frames keeps same-named modules in
  different packages apart. No path stripping heuristic can therefore split a group.
* Only in-app frames count (library frames change with library versions and with the Python
  version); when a trace has none, its library frames are used instead. Comprehension frames
  are dropped (Python 3.12 inlines them, PEP 709).
* The innermost ``MAX_FRAMES`` (5) in-app frames count, and the walk outward stops at the
  first frame seen before (recursion): capture tools cut deep stacks from the outside (the
  legacy gen-2 writer kept the last 50 frames), so the outer frames of a recursion are
  unreliable, and entry points far from the crash add variance, not identity. One frame is
  too few (precision 0.980: look-alike bugs and shared helpers raise in the same function);
  two already separate everything measured; five keeps a margin for deeper helper chains.
* The filed component is *not* part of a stack signature (with it: recall 0.986/0.984):
  people file under the component of the page they were on, and component names were renamed
  over time. The frames already say where the code failed.
* The route template is not part of a stack signature either (with it: recall 0.999): the
  in-app frames include the view, so it adds no precision, and concrete URLs of catch-all
  routes (``<path:...>``) cannot be mapped back to their template.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from bugdesk.fingerprint import Fingerprint, Signal
from bugdesk.fingerprint.normalize import (
    COMPREHENSION_FUNCTIONS,
    exception_type_name,
    frame_key,
    normalize_message,
    normalize_title,
    route_template,
)
from bugdesk.fingerprint.traceback import Frame, RawException, is_library_path, scan_traceback

ALGORITHM = "v1"
MAX_FRAMES = 5

# "ErrorType: message" inside prose: a dotted path ending in a class name
# (pkg.errors.CardDeclined), or a bare class name with a conventional exception suffix.
_EXC_IN_TEXT_RE = re.compile(
    r"(?<![\w.])((?:[a-z_]\w*\.)+[A-Z]\w*|[A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt))"
    r"(?::[ \t]+([^\n]+))?"
)


def fingerprint(signal: Signal) -> Fingerprint:
    """Compute the v1 fingerprint of `signal`."""
    exc_type = _text(signal.exception_type)
    keys: list[str] = []
    if isinstance(signal.frames, tuple | list):
        keys = _keys_from_frames(signal.frames)
    if not keys:
        for text in (signal.stacktrace, signal.description):
            if isinstance(text, str) and 'File "' in text:
                blocks = scan_traceback(text)
                if blocks:
                    keys = _keys_from_blocks(blocks)
                    exc_type = blocks[-1][0] or exc_type
                    if keys:
                        break
    exc_name = exception_type_name(exc_type)
    if keys:
        return _stack(exc_name, keys)
    return _message_or_title(signal, exc_name)


# --------------------------------------------------------------------------------------------
# stack
# --------------------------------------------------------------------------------------------
def _keys_from_frames(frames: tuple[Frame, ...]) -> list[str]:
    app, lib = [], []
    for f in frames:
        if not isinstance(f, Frame):
            continue
        filename, module, function = _text(f.filename), _text(f.module), _text(f.function)
        if function in COMPREHENSION_FUNCTIONS or not (filename or module or function):
            continue
        key = frame_key(filename, module, function)
        in_app = f.in_app if isinstance(f.in_app, bool) else not is_library_path(filename)
        (app if in_app else lib).append(key)
    return _select(app or lib)


@lru_cache(maxsize=65536)
def _text_frame(filename: str, function: str) -> tuple[str | None, bool]:
    """(frame key or None for a skipped frame, is library code) for one text frame."""
    if function in COMPREHENSION_FUNCTIONS:
        return None, False
    return frame_key(filename, None, function or None), is_library_path(filename)


def _keys_from_blocks(blocks: list[RawException]) -> list[str]:
    # The raised exception is the last block; a cause may hold the in-app frames when the
    # final exception was raised from library code, so walk back to the last block with any.
    fallback: list[str] = []
    for _exc_type, _message, frames in reversed(blocks):
        app, lib = [], []
        for filename, _lineno, function in frames:
            key, library = _text_frame(filename, function)
            if key is not None:
                (lib if library else app).append(key)
        if app:
            return _select(app)
        if lib and not fallback:
            fallback = _select(lib)
    return fallback


def _select(keys: list[str]) -> list[str]:
    """Innermost MAX_FRAMES keys, stopping at the first repeat (recursion); outermost first."""
    out: list[str] = []
    for key in reversed(keys):
        if key in out:
            break
        out.append(key)
        if len(out) == MAX_FRAMES:
            break
    out.reverse()
    return out


def _stack(exc_name: str | None, keys: list[str]) -> Fingerprint:
    lines = [f"{ALGORITHM} stack", f"exception: {exc_name or '-'}"]
    lines += [f"frame: {k}" for k in keys]
    # said explicitly, so that a human comparing two groups sees what was left out
    lines += ["route: (not used for stacks)", "component: (not used for stacks)"]
    return _make("stack", lines, exc_name, tuple(keys), None, None)


# --------------------------------------------------------------------------------------------
# message and title
# --------------------------------------------------------------------------------------------
def _message_or_title(signal: Signal, exc_name: str | None) -> Fingerprint:
    message = _text(signal.exception_message)
    if not exc_name and not message:
        for text in (signal.description, signal.title):
            if isinstance(text, str):
                m = _EXC_IN_TEXT_RE.search(text[:20000])
                if m:
                    exc_name, message = exception_type_name(m.group(1)), m.group(2)
                    break
    component = _component(signal.component)
    route = route_template(signal.route)
    if exc_name or message:
        norm = normalize_message(message)
        lines = [
            f"{ALGORITHM} message",
            f"exception: {exc_name or '-'}",
            f"message: {norm or '-'}",
            f"component: {component or '-'}",
            f"route: {route or '-'}",
        ]
        return _make("message", lines, exc_name, (), component, route)
    title = normalize_title(_text(signal.title) or _first_line(signal.description))
    lines = [
        f"{ALGORITHM} title",
        f"title: {title or '-'}",
        f"component: {component or '-'}",
        f"route: {route or '-'}",
    ]
    return _make("title", lines, None, (), component, route)


def _first_line(text: object) -> str | None:
    # reports without a title (e.g. from an ingest bridge) are known by their first line
    if not isinstance(text, str):
        return None
    for line in text[:2000].splitlines():
        if line.strip():
            return line
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _component(component: str | None) -> str | None:
    if not isinstance(component, str):
        return None
    return component.strip().lower() or None


def _make(
    kind: str,
    lines: list[str],
    exc_name: str | None,
    frames: tuple[str, ...],
    component: str | None,
    route: str | None,
) -> Fingerprint:
    signature = "\n".join(lines)
    digest = hashlib.sha256(signature.encode("utf-8")).hexdigest()[:32]
    return Fingerprint(
        hash=digest,
        algorithm=ALGORITHM,
        kind=kind,
        signature=signature,
        exception_type=exc_name,
        frames=frames,
        component=component,
        route=route,
    )
