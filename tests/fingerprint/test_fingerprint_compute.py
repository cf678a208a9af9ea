"""compute(): kinds, the frozen v1 output, and invariance properties (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bugdesk.fingerprint import (
    ALGORITHMS,
    CURRENT,
    Fingerprint,
    Signal,
    compute,
    frames_from_list,
    v1,
)

# ------------------------------------------------------------------------------------------
# rendering realistic tracebacks
# ------------------------------------------------------------------------------------------
FRAMEWORK = [
    ("flask/app.py", "wsgi_app", "response = self.full_dispatch_request()"),
    ("flask/app.py", "full_dispatch_request", "rv = self.dispatch_request()"),
]
LIBRARY_TAIL = [("sqlalchemy/engine/base.py", "_execute_context", "return self._exec_single_context(")]


def render(
    app_frames,
    exc_type="KeyError",
    message="'card_id'",
    *,
    root="/srv/shop/releases/0196050d4f33",
    site="/srv/shop/venv/lib/python3.11/site-packages",
    lines=None,
    lib_lines=None,
    carets=True,
    prefix_log=False,
):
    """A traceback as Python prints it; app_frames are (package path, module, function)."""
    out = []
    if prefix_log:
        out.append("[2025-03-01 10:22:01,123] ERROR in app: Exception on /checkout [POST]")
    out.append("Traceback (most recent call last):")

    def frame(path, lineno, func, code):
        out.append(f'  File "{path}", line {lineno}, in {func}')
        out.append(f"    {code}")
        if carets:
            out.append("    " + "^" * len(code))

    for k, (rel, func, code) in enumerate(FRAMEWORK):
        frame(f"{site}/{rel}", (lib_lines or [1823, 1799])[k], func, code)
    for k, (pkg, mod, func) in enumerate(app_frames):
        lineno = lines[k] if lines else 10 + 7 * k
        frame(f"{root}/{pkg}/{mod}.py", lineno, func, f"return {func}(payload)")
    for rel, func, code in LIBRARY_TAIL:
        frame(f"{site}/{rel}", (lib_lines or [0, 0, 1846])[-1], func, code)
    out.append(f"{exc_type}: {message}" if message else exc_type)
    return "\n".join(out)


STACK = [("shop/orders", "views", "place_order"), ("shop/pay", "charge", "capture_payment")]


# ------------------------------------------------------------------------------------------
# kinds and fields
# ------------------------------------------------------------------------------------------
def test_a_traceback_gives_a_stack_fingerprint_of_type_and_in_app_frames():
    fp = compute(Signal(stacktrace=render(STACK), component="checkout", route="/checkout/pay"))
    assert isinstance(fp, Fingerprint)
    assert fp.algorithm == "v1" == CURRENT
    assert fp.kind == "stack"
    assert fp.exception_type == "KeyError"
    assert fp.frames == ("views:place_order", "charge:capture_payment")
    assert fp.component is None and fp.route is None  # not part of stack signatures
    assert fp.signature.splitlines() == [
        "v1 stack",
        "exception: KeyError",
        "frame: views:place_order",
        "frame: charge:capture_payment",
        "route: (not used for stacks)",
        "component: (not used for stacks)",
    ]
    assert len(fp.hash) == 32 and int(fp.hash, 16) >= 0


def test_a_traceback_pasted_into_the_description_counts_as_the_stack():
    text = render(STACK, prefix_log=True)
    from_field = compute(Signal(stacktrace=text))
    from_description = compute(Signal(title="checkout broken", description=f"Happened twice.\n\n```\n{text}\n```"))
    assert from_description.kind == "stack"
    assert from_description.hash == from_field.hash


def test_structured_frames_and_the_printed_traceback_of_one_crash_agree():
    text = render(STACK, exc_type="stripe.error.CardError", message="Your card was declined.")
    frames = frames_from_list(
        [
            {
                "file": "/srv/shop/venv/lib/python3.12/site-packages/flask/app.py",
                "line": 880,
                "function": "full_dispatch_request",
                "module": "flask.app",
            },
            {"file": "shop/orders/views.py", "line": 41, "function": "place_order"},
            {"file": "shop/pay/charge.py", "line": 90, "function": "capture_payment"},
        ]
    )
    structured = Signal(frames=frames, exception_type="CardError", exception_message="declined")
    assert compute(structured).hash == compute(Signal(stacktrace=text)).hash


def test_a_chained_traceback_uses_the_raised_type_and_the_frames_that_reach_app_code():
    cause = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.12/site-packages/psycopg2/extras.py", line 12, in execute\n'
        "psycopg2.errors.UniqueViolation: duplicate key\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
    )
    fp = compute(Signal(stacktrace=cause + render(STACK, exc_type="sqlalchemy.exc.IntegrityError")))
    assert fp.exception_type == "IntegrityError"
    assert fp.frames == ("views:place_order", "charge:capture_payment")


def test_library_frames_are_used_when_there_is_no_application_frame():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/usr/local/lib/python3.12/site-packages/celery/app/trace.py", line 453, in trace_task\n'
        '  File "/usr/local/lib/python3.12/site-packages/kombu/connection.py", line 9, in connect\n'
        "kombu.exceptions.OperationalError: connection refused"
    )
    fp = compute(Signal(stacktrace=text))
    assert fp.kind == "stack"
    assert fp.frames == ("trace:trace_task", "connection:connect")


def test_recursion_depth_and_truncated_outer_frames_do_not_change_the_fingerprint():
    deep = render([*STACK, ("shop/catalog", "tree", "walk"), ("shop/catalog", "tree", "walk")])
    deep = deep.replace(
        "return walk(payload)\n    ^^^^^^^^^^^^^^^^^^^^\n  File",
        "return walk(payload)\n  [Previous line repeated 996 more times]\n  File",
        1,
    )
    cut = frames_from_list([{"file": "shop/catalog/tree.py", "line": 20, "function": "walk"}] * 50)
    assert compute(Signal(stacktrace=deep)).frames == ("tree:walk",)
    assert compute(Signal(stacktrace=deep)).hash == compute(Signal(frames=cut, exception_type="KeyError")).hash


def test_only_the_innermost_frames_count():
    many = [("shop/a", f"m{k}", f"f{k}") for k in range(12)]
    fp = compute(Signal(stacktrace=render(many)))
    assert len(fp.frames) == v1.MAX_FRAMES
    assert fp.frames[-1] == "m11:f11"
    other_entry = [("shop/b", "entry", "other_view"), *many[1:]]
    assert compute(Signal(stacktrace=render(other_entry))).hash == fp.hash


def test_the_filed_component_and_route_do_not_split_a_stack_group():
    a = compute(Signal(stacktrace=render(STACK), component="checkout", route="/checkout"))
    b = compute(Signal(stacktrace=render(STACK), component="payments", route="POST /checkout/pay"))
    assert a.hash == b.hash


def test_without_frames_an_exception_gives_a_message_fingerprint():
    fp = compute(
        Signal(
            title="[sentry] KeyError",
            exception_type="KeyError",
            exception_message="'sku' for SKU-00123-BL",
            component=" Inventory ",
            route="/api/inventory/SKU-00123-BL?page=2",
        )
    )
    assert fp.kind == "message"
    assert fp.frames == ()
    assert fp.component == "inventory"
    assert fp.route == "/api/inventory/{id}"
    assert fp.signature.splitlines() == [
        "v1 message",
        "exception: KeyError",
        "message: <str> for <id>",
        "component: inventory",
        "route: /api/inventory/{id}",
    ]


def test_an_exception_line_in_the_description_gives_a_message_fingerprint():
    a = compute(Signal(description="[cron] job failed on web-3\nKeyError: 'sku'", component="jobs"))
    b = compute(Signal(description="Scheduled job failed 4 times.\nKeyError: 'sku'", component="jobs"))
    assert a.kind == "message"
    assert a.exception_type == "KeyError"
    assert a.hash == b.hash


def test_prose_gives_a_title_fingerprint():
    a = compute(Signal(title="Coupon not applied AGAIN!!", component="checkout", route="/cart/7"))
    b = compute(Signal(title="coupon not applied again", component="checkout", route="/cart/8"))
    c = compute(Signal(title="coupon not applied again", component="billing", route="/cart/8"))
    assert a.kind == "title"
    assert a.hash == b.hash != c.hash
    assert a.signature.splitlines() == [
        "v1 title",
        "title: coupon not applied again",
        "component: checkout",
        "route: /cart/{id}",
    ]


def test_an_empty_signal_still_gets_a_fingerprint():
    assert compute(Signal()).kind == "title"


def test_an_unknown_algorithm_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown fingerprint algorithm 'v9'; known: v1"):
        compute(Signal(), "v9")
    assert ALGORITHMS["v1"] is v1.fingerprint


# v1 is frozen: these hashes must never change. A change that moves one belongs in v2.py.
GOLDEN_TRACEBACK = """\
Traceback (most recent call last):
  File "/srv/shop/venv/lib/python3.11/site-packages/flask/app.py", line 1799, in dispatch_request
    return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)
  File "/srv/shop/releases/0196050d4f33/shop/orders/views.py", line 41, in place_order
    return jsonify(capture_payment(order))
  File "/srv/shop/releases/0196050d4f33/shop/pay/charge.py", line 88, in capture_payment
    card_id = payload["card_id"]
              ~~~~~~~^^^^^^^^^^^
KeyError: 'card_id'"""
GOLDEN = [
    (Signal(stacktrace=GOLDEN_TRACEBACK), "3a56b2513896908a574c5b68a0f64c6c"),
    (
        Signal(exception_type="TimeoutError", exception_message="after 30 s", component="x"),
        "35e1539b7ca6142513b4f01ca7fc6f94",
    ),
    (
        Signal(title="Export button does nothing", component="reports", route="/reports/1"),
        "4a37d4b934461efb53fe5906edb2fea0",
    ),
]


@pytest.mark.parametrize(("signal", "expected"), GOLDEN)
def test_v1_output_is_frozen(signal, expected):
    assert compute(signal, "v1").hash == expected


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------
ident = st.from_regex(r"[a-z][a-z0-9_]{1,10}", fullmatch=True)
packages = st.lists(ident, min_size=1, max_size=3).map("/".join)
app_frame = st.tuples(packages, ident, ident)
stacks = st.lists(app_frame, min_size=1, max_size=8)
line_numbers = st.lists(st.integers(1, 5000), min_size=8, max_size=8)
exception_types = st.from_regex(r"[A-Z][a-zA-Z]{2,12}Error", fullmatch=True)
user = ident
sha = st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
roots = st.one_of(
    st.builds(lambda s, v: f"/srv/{s}/releases/{v}", ident, sha),
    st.builds(lambda s, v: f"/srv/{s}-staging/releases/{v}", ident, sha),
    st.just("/app"),
    st.just("/usr/src/app"),
    st.builds(lambda u, p: f"/Users/{u}/code/{p}", user, ident),
    st.builds(lambda u, p: f"/home/{u}/src/{p}", user, ident),
    st.builds(lambda d: f"C:\\Users\\{d}\\shop".replace("\\", "/"), ident),
)
python_versions = st.sampled_from(["3.10", "3.11", "3.12", "3.13"])
sites = st.builds(
    lambda root, py, kind: (
        f"{root}/.venv/lib/python{py}/site-packages"
        if kind == 0
        else f"/usr/local/lib/python{py}/site-packages"
        if kind == 1
        else f"/opt/venv/lib/python{py}/site-packages"
    ),
    roots,
    python_versions,
    st.integers(0, 2),
)
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(stacks, exception_types, line_numbers, line_numbers)
def test_line_number_shifts_do_not_change_the_fingerprint(stack, exc, lines_a, lines_b):
    a = render(stack, exc, lines=lines_a)
    b = render(stack, exc, lines=lines_b, lib_lines=[2529, 1473, 1967])
    assert compute(Signal(stacktrace=a)).hash == compute(Signal(stacktrace=b)).hash


@FAST
@given(stacks, exception_types, roots, roots, st.booleans(), st.booleans())
def test_deploy_path_prefixes_do_not_change_the_fingerprint(stack, exc, root_a, root_b, c1, c2):
    a = render(stack, exc, root=root_a, carets=c1)
    b = render(stack, exc, root=root_b, carets=c2, prefix_log=True)
    assert compute(Signal(stacktrace=a)).hash == compute(Signal(stacktrace=b)).hash


@FAST
@given(stacks, exception_types, sites, sites)
def test_python_version_and_virtualenv_paths_do_not_change_the_fingerprint(stack, exc, s1, s2):
    a = render(stack, exc, site=s1)
    b = render(stack, exc, site=s2, lib_lines=[880, 865, 1986])
    assert compute(Signal(stacktrace=a)).hash == compute(Signal(stacktrace=b)).hash


@FAST
@given(stacks, exception_types, ident, ident)
def test_a_module_moved_into_a_subpackage_keeps_its_fingerprint(stack, exc, sub, library_module):
    moved = [(f"{pkg}/{sub}", mod, fn) for pkg, mod, fn in stack]
    a = render(stack, f"{library_module}.error.{exc}")
    b = render(moved, f"{library_module}._error.{exc}")
    assert compute(Signal(stacktrace=a)).hash == compute(Signal(stacktrace=b)).hash


emails = st.from_regex(r"[a-z][a-z0-9._+-]{0,15}@[a-z0-9-]{1,12}\.(com|de|io|co\.uk)", fullmatch=True)
addresses = st.integers(0x7F0000000000, 0x7FFFFFFFFFFF).map(hex)
quoted = st.text(st.characters(blacklist_characters="'\\\n\r", blacklist_categories=["Cs", "Cc"]), max_size=20).map(
    lambda s: f"'{s}'"
)
numbers = st.one_of(
    st.integers(-(10**9), 10**9).map(str),
    st.decimals(0, 10**6, places=2, allow_nan=False, allow_infinity=False).map(str),
)
variable_data = st.fixed_dictionaries(
    {
        "id": numbers,
        "email": emails,
        "uuid": st.uuids().map(str),
        "addr": addresses,
        "value": quoted,
    }
)
MESSAGE = "user {id} ({email}) order {uuid} at <Obj object at {addr}> rejected key {value}"


@FAST
@given(exception_types, variable_data, variable_data, stacks)
def test_memory_addresses_and_variable_data_in_messages_do_not_change_the_fingerprint(exc, data_a, data_b, stack):
    msg_a, msg_b = MESSAGE.format(**data_a), MESSAGE.format(**data_b)
    a = Signal(exception_type=exc, exception_message=msg_a, component="c", route="/x/1")
    b = Signal(exception_type=exc, exception_message=msg_b, component="c", route="/x/2")
    assert compute(a).kind == "message"
    assert compute(a).hash == compute(b).hash
    text_a = render(stack, exc, message=msg_a)
    text_b = render(stack, exc, message=msg_b)
    assert compute(Signal(stacktrace=text_a)).hash == compute(Signal(stacktrace=text_b)).hash


unique_stacks = st.lists(app_frame, min_size=1, max_size=8, unique_by=lambda f: (f[1], f[2]))


@FAST
@given(unique_stacks, exception_types, st.data())
def test_another_in_app_function_changes_the_fingerprint(stack, exc, data):
    counted = stack[-v1.MAX_FRAMES :]
    k = len(stack) - len(counted) + data.draw(st.integers(0, len(counted) - 1))
    pkg, mod, _fn = stack[k]
    names = {f[2] for f in stack} | {f[1] for f in stack}
    new_fn = data.draw(ident.filter(lambda n: n not in names))
    changed = [*stack[:k], (pkg, mod, new_fn), *stack[k + 1 :]]
    a = compute(Signal(stacktrace=render(stack, exc)))
    b = compute(Signal(stacktrace=render(changed, exc)))
    assert a.hash != b.hash


@FAST
@given(stacks, exception_types, exception_types)
def test_another_exception_type_changes_the_fingerprint(stack, exc_a, exc_b):
    if exc_a == exc_b:
        exc_b = exc_b + "X"
    a = compute(Signal(stacktrace=render(stack, exc_a)))
    b = compute(Signal(stacktrace=render(stack, exc_b)))
    assert a.hash != b.hash


text_or_none = st.one_of(st.none(), st.text(max_size=300))


@FAST
@given(text_or_none, text_or_none, text_or_none, text_or_none, text_or_none, text_or_none)
def test_compute_never_raises_on_arbitrary_text(title, desc, trace, exc, component, route):
    for stacktrace in (trace, f'Traceback (most recent call last):\n  File "{trace}", line 1\n'):
        signal = Signal(
            title=title,
            description=desc,
            stacktrace=stacktrace,
            exception_type=exc,
            exception_message=desc,
            component=component,
            route=route,
        )
        assert compute(signal).kind in {"stack", "message", "title"}


def test_without_a_title_the_first_line_of_the_description_stands_in():
    a = compute(Signal(description="\n  Export button does nothing\nmore text", component="r"))
    b = compute(Signal(title="export button does nothing!", component="r"))
    assert a.kind == "title"
    assert a.hash == b.hash
