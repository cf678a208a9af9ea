"""Normalisation helpers: frame keys, repository-relative paths, components, routes and messages.

Everything here follows general structure, never names from a particular application: deploy
prefixes are recognised by their shape (``releases/<sha>/``, home directories, container
roots, virtualenvs), routes by what their segments look like (numbers, UUIDs, hashes), and
messages by the kind of data they carry (ids, e-mails, addresses, quoted values, dates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from bugdesk.fingerprint.traceback import Frame, is_library_path

__all__ = [
    "COMPREHENSION_FUNCTIONS",
    "GENERIC_PACKAGES",
    "component_from_frames",
    "exception_type_name",
    "frame_key",
    "normalize_message",
    "normalize_title",
    "repo_path_hints",
    "repo_relative_path",
    "route_template",
]

# --------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------
# Python 3.12 inlines list/dict/set comprehensions (PEP 709): the same code shows a
# "<listcomp>" frame under 3.11 and none under 3.12, so these frames never count.
COMPREHENSION_FUNCTIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>"})

_EXTENSION_RE = re.compile(r"\.(?:py[cowxid]?|so)$", re.IGNORECASE)


@lru_cache(maxsize=32768)
def frame_key(filename: str | None, module: str | None, function: str | None) -> str:
    """`<module basename>:<function>`, e.g. ``charge:capture_payment``.

    Only the file's basename is kept: deploy prefixes, virtualenvs and moves into
    subpackages (``pkg/webhooks.py`` -> ``pkg/domain/webhooks.py``) all leave it unchanged.
    A package's ``__init__.py`` is named after its directory. A qualified function name
    (``Class.method``, as some SDKs send) is cut to its last part, as Python prints it.
    """
    stem = None
    if filename:
        parts = filename.replace("\\", "/").rstrip("/").rsplit("/", 2)
        stem = _EXTENSION_RE.sub("", parts[-1])
        if stem == "__init__" and len(parts) > 1:
            stem = parts[-2]
    elif module:
        stem = module.rsplit(".", 1)[-1]
    func = (function or "?").strip().rsplit(".", 1)[-1] or "?"
    return f"{stem or '?'}:{func}"


def exception_type_name(raw: str | None) -> str | None:
    """The bare class name: ``stripe._error.CardError`` -> ``CardError``.

    Library module paths move between versions (``x.error`` -> ``x._error``); the class name
    is what identifies the failure.
    """
    if not isinstance(raw, str):
        return None
    name = raw.strip().rsplit(".", 1)[-1].strip()
    return name or None


# --------------------------------------------------------------------------------------------
# repository-relative paths
# --------------------------------------------------------------------------------------------
# A virtualenv directory inside a project tells where the project root is:
# /home/u/src/shop/.venv/lib/python3.12/site-packages -> /home/u/src/shop
_VENV_ROOT_RE = re.compile(r"^(/.+?)/\.?[\w.-]*env[\w.-]*/lib(?:64)?/(?:python|pypy)")
# Ordered: the first that matches is stripped. Each is a common shape, not a name from one app.
_PREFIX_RES = [
    # capistrano-style and atomic deploys: .../releases/<sha-or-version>/, .../current/
    re.compile(r"^.*/releases?/[^/]+/"),
    re.compile(r"^.*/(?:current|latest)/"),
    # installed packages: the path inside the package
    re.compile(r"^.*/(?:site-packages|dist-packages)/"),
    # developer machines: ~/<workspace dir>/<project>/ or ~/<project>/
    re.compile(
        r"^/(?:Users|home)/[^/]+/(?:(?:code|src|source|projects?|dev|devel|work|workspace|git|"
        r"repos?|github|gitlab|Documents|Desktop|PycharmProjects|go/src)/)?[^/]+/",
        re.IGNORECASE,
    ),
    re.compile(r"^/root/[^/]+/"),
    # servers and containers: /srv/<x>/, /opt/<x>/, /var/www/<x>/, /usr/src/<x>/, /app/, /code/ ...
    re.compile(r"^/(?:srv|opt|var/www|var/app|usr/src|home/app|deploy)/[^/]+/"),
    re.compile(r"^/(?:app|code|src|workspace|workdir|project|service|usr/app)/"),
]
_DEPLOY_RES = _PREFIX_RES[:2]
_DRIVE_RE = re.compile(r"^[A-Za-z]:/")


@lru_cache(maxsize=16384)
def repo_relative_path(filename: str | None, module: str | None = None, root: str | None = None) -> str | None:
    """The path relative to the repository root, deploy/venv/home prefixes stripped.

    `module` (structured frames carry it) is the strongest hint: ``app.payments.charge`` says
    the path ends in ``app/payments/charge.py``. `root` is a project root learned from the
    same trace (see `repo_path_hints`). Otherwise a list of common deploy shapes applies.
    """
    if not filename:
        if module:
            return module.replace(".", "/") + ".py"
        return None
    path = filename.replace("\\", "/")
    if module:
        suffix = module.replace(".", "/")
        for candidate in (suffix + ".py", suffix + "/__init__.py"):
            if path == candidate or path.endswith("/" + candidate):
                return candidate
    path = _DRIVE_RE.sub("/", path)
    if path.startswith("./"):
        path = path[2:]
    if not path.startswith("/"):
        return path
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
        # the venv may sit next to the releases (/srv/x/venv, /srv/x/releases/<sha>/...)
        for rx in _DEPLOY_RES:
            path = rx.sub("", path, count=1)
        return path.lstrip("/")
    for rx in _PREFIX_RES:
        stripped = rx.sub("", path, count=1)
        if stripped != path:
            return stripped
    return path.lstrip("/")


def _project_root(frames: Iterable[Frame]) -> str | None:
    for f in frames:
        if f.filename:
            m = _VENV_ROOT_RE.match(f.filename.replace("\\", "/"))
            if m:
                return m.group(1)
    return None


def _usable(frames: Iterable[Frame] | None) -> tuple[Frame, ...]:
    # callers pass parsed or hand-built frames; anything malformed is ignored, never raised on
    if not isinstance(frames, Iterable):
        return ()
    return tuple(
        f
        for f in frames
        if isinstance(f, Frame)
        and isinstance(f.filename, str | None)
        and isinstance(f.module, str | None)
        and (f.filename or f.module)
    )


def _in_app(frames: tuple[Frame, ...]) -> list[Frame]:
    return [f for f in frames if (f.in_app if isinstance(f.in_app, bool) else not is_library_path(f.filename))]


def repo_path_hints(frames: Iterable[Frame] | None) -> list[str]:
    """In-app files relative to the repository root with line numbers, innermost first.

    E.g. ``["app/payments/charge.py:88", "app/payments/views.py:41"]``; duplicates removed.
    """
    frames = _usable(frames)
    root = _project_root(frames)
    out: list[str] = []
    seen = set()
    for f in reversed(_in_app(frames)):
        rel = repo_relative_path(f.filename, f.module, root)
        if not rel:
            continue
        hint = f"{rel}:{f.lineno}" if f.lineno is not None else rel
        if hint not in seen:
            seen.add(hint)
            out.append(hint)
    return out


# Shared-infrastructure packages by convention: a crash inside one of these helpers belongs
# to the component that called it.
GENERIC_PACKAGES = frozenset(
    {"core", "common", "commons", "shared", "utils", "util", "lib", "libs", "helpers", "support"}
)


def _package_of(rel: str) -> str | None:
    parts = [p for p in rel.split("/") if p]
    if len(parts) >= 3:
        return parts[1]  # <top-level package>/<component>/.../module.py
    if len(parts) == 2:
        return parts[0]
    return None


def component_from_frames(frames: Iterable[Frame] | None) -> str | None:
    """A component guess: the first package below the top-level package of the innermost
    in-app frame (``app/payments/domain/webhooks.py`` -> ``payments``), skipping shared
    helper packages (``core``, ``common``, ``utils`` ...); None if unknown."""
    frames = _usable(frames)
    root = _project_root(frames)
    first = None
    for f in reversed(_in_app(frames)):
        rel = repo_relative_path(f.filename, f.module, root)
        package = _package_of(rel) if rel else None
        if package is None:
            continue
        if package.lower() not in GENERIC_PACKAGES:
            return package
        first = first or package
    return first


# --------------------------------------------------------------------------------------------
# routes
# --------------------------------------------------------------------------------------------
_METHOD_RE = re.compile(r"^(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE|CONNECT)\s+", re.I)
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]*", re.I)
# Flask/Werkzeug <conv:name>, OpenAPI/FastAPI/Django-ish {name}, Express/Rails :name
_PLACEHOLDER_RE = re.compile(r"^(?:<(?:[^:<>]+:)?[^<>]+>|\{[^{}]+\}|:[A-Za-z_]\w*)$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_HEX_RE = re.compile(r"^[0-9a-f]{8,}$", re.I)
_VERSION_SEGMENT_RE = re.compile(r"^v\d+(?:\.\d+)*$", re.I)
_TOKEN_RE = re.compile(r"^[\w.~-]+$")
ID_PLACEHOLDER = "{id}"


def _is_id_segment(seg: str) -> bool:
    if seg.isdigit() or _UUID_RE.match(seg) or (_HEX_RE.match(seg) and any(c.isdigit() for c in seg)):
        return True
    if _VERSION_SEGMENT_RE.match(seg):
        return False  # /api/v2/ is part of the route, not data
    if "@" in seg:
        return True
    has_digit = any(c.isdigit() for c in seg)
    if has_digit and len(seg) >= 6:
        return True  # SKU-00123-BL, a slug with a number, a date, an order number
    # a long opaque token (signed links, reset tokens) even when it happens to have no digit
    return len(seg) >= 20 and _TOKEN_RE.match(seg) is not None and not seg.islower()


@lru_cache(maxsize=8192)
def route_template(route_or_url: str | None) -> str | None:
    """A route template: ``"GET /api/invoices/123?x=1"`` -> ``"/api/invoices/{id}"``.

    Flask ``<int:invoice_id>``, ``{invoice_id}`` and concrete ids all become ``{id}`` so the
    three spellings of one route agree; the method, scheme/host, query and fragment go.
    """
    if not isinstance(route_or_url, str):
        return None
    s = _METHOD_RE.sub("", route_or_url.strip())
    s = _SCHEME_RE.sub("", s)
    s = s.split("#", 1)[0].split("?", 1)[0].strip()
    if not s:
        return None
    segs = []
    for seg in s.split("/"):
        if not seg:
            continue
        if _PLACEHOLDER_RE.match(seg) or _is_id_segment(seg):
            segs.append(ID_PLACEHOLDER)
        else:
            segs.append(seg)
    return "/" + "/".join(segs)


# --------------------------------------------------------------------------------------------
# messages and titles
# --------------------------------------------------------------------------------------------
# Order matters: specific shapes (UUIDs, e-mails, timestamps, addresses) before the generic
# quoted values and numbers that would otherwise eat parts of them.
_MESSAGE_SUBS = [
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)]+", re.I), "<url>"),
    (
        re.compile(
            r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?|\b\d{1,2}[./]\d{1,2}[./]\d{2,4}(?: \d{1,2}:\d{2}(?::\d{2})?)?"
        ),
        "<date>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<addr>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    # quoted values: the opening quote must not follow a letter, so "can't ... 'x'" pairs right
    (
        re.compile(r"(?<![\w'])'(?:[^'\\\n]|\\.)*'(?!\w)|(?<![\w\"])\"(?:[^\"\\\n]|\\.)*\"(?!\w)"),
        "<str>",
    ),
    # opaque tokens mixing letters and digits: req_8f3a..., cus_AbC123..., SKU-00123-BL
    (re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{6,}\b"), "<id>"),
    (re.compile(r"[-+]?(?:[$€£¥])?\d+(?:[.,]\d+)*"), "<n>"),
]
_SPACE_RE = re.compile(r"\s+")
_MAX_MESSAGE = 500


def normalize_message(msg: str | None) -> str | None:
    """Replace variable data with placeholders and collapse whitespace.

    Numbers, amounts, hex, ``0x`` addresses, UUIDs, e-mails, URLs, quoted values, dates and
    times, and opaque letter+digit tokens become ``<n>``, ``<hex>``, ``<addr>``, ``<uuid>``,
    ``<email>``, ``<url>``, ``<str>``, ``<date>``/``<time>`` and ``<id>``.
    """
    if not isinstance(msg, str):
        return None
    s = msg[: _MAX_MESSAGE * 4]
    for rx, placeholder in _MESSAGE_SUBS:
        s = rx.sub(placeholder, s)
    s = _SPACE_RE.sub(" ", s).strip()
    return s[:_MAX_MESSAGE] or None


_TITLE_NOISE_RE = re.compile(r"[^\w<> ]+")


def normalize_title(title: str | None) -> str | None:
    """`normalize_message`, lower-cased, punctuation dropped ("again!!" == "again")."""
    s = normalize_message(title.lower() if isinstance(title, str) else None)
    if s is None:
        return None
    s = _SPACE_RE.sub(" ", _TITLE_NOISE_RE.sub(" ", s)).strip()
    return s or None
