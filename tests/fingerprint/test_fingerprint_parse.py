"""Parsing printed tracebacks and structured frame lists."""

from __future__ import annotations

import pytest

from bugdesk.fingerprint import ExceptionInfo, Frame, frames_from_list, parse_traceback

FLASK_TRACEBACK = """\
Traceback (most recent call last):
  File "/srv/shop/venv/lib/python3.11/site-packages/flask/app.py", line 1823, in full_dispatch_request
    rv = self.dispatch_request()
         ^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/shop/venv/lib/python3.11/site-packages/flask/app.py", line 1799, in dispatch_request
    return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/shop/releases/4f2a9c1e/shop/orders/views.py", line 41, in place_order
    return jsonify(total_for(cart))
                   ^^^^^^^^^^^^^^^
  File "/srv/shop/releases/4f2a9c1e/shop/orders/pricing.py", line 88, in total_for
    return cart.subtotal - cart["discount"]
           ~~~~~~~~~~~~~~^~~~~~~~~~~~~~~~~~
KeyError: 'discount'"""

CHAINED_CAUSE = """\
Traceback (most recent call last):
  File "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/base.py", line 1967, in _exec_single_context
    self.dialect.do_execute(
  File "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/default.py", line 924, in do_execute
    cursor.execute(statement, parameters)
psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "uq_refunds_charge_id"
DETAIL:  Key (charge_id)=(ch_3Nf) already exists.


The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/ledger/refunds.py", line 57, in create_refund
    session.commit()
  File "/usr/local/lib/python3.12/site-packages/sqlalchemy/orm/session.py", line 1969, in commit
    trans.commit(_to_root=True)
sqlalchemy.exc.IntegrityError: (psycopg2.errors.UniqueViolation) duplicate key value violates "uq_refunds"
DETAIL:  Key (charge_id)=(ch_3Nf) already exists.

[SQL: INSERT INTO refunds (charge_id) VALUES (%(charge_id)s) RETURNING refunds.id]
[parameters: {'charge_id': 'ch_3Nf'}]
(Background on this error at: https://sqlalche.me/e/20/gkpj)"""

DURING_HANDLING = """\
Traceback (most recent call last):
  File "/home/ana/src/crm/crm/contacts/importer.py", line 30, in parse_row
    return int(row["age"])
ValueError: invalid literal for int() with base 10: 'abc'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/home/ana/src/crm/crm/contacts/importer.py", line 12, in import_file
    rows.append(parse_row(row))
  File "/home/ana/src/crm/crm/contacts/importer.py", line 33, in parse_row
    log.warning("bad row %s", row.id)
AttributeError: 'dict' object has no attribute 'id'"""


def test_a_flask_traceback_with_carets_gives_every_frame_and_the_exception():
    trace = parse_traceback(FLASK_TRACEBACK)
    assert trace is not None
    assert len(trace.exceptions) == 1
    last = trace.last
    assert last.type == "KeyError"
    assert last.message == "'discount'"
    assert [f.function for f in last.frames] == [
        "full_dispatch_request",
        "dispatch_request",
        "place_order",
        "total_for",
    ]
    assert [f.lineno for f in last.frames] == [1823, 1799, 41, 88]
    assert [f.in_app for f in last.frames] == [False, False, True, True]
    assert last.frames[3] == Frame("/srv/shop/releases/4f2a9c1e/shop/orders/pricing.py", None, "total_for", 88, True)


def test_a_direct_cause_chain_lists_the_cause_first_and_keeps_multi_line_messages():
    trace = parse_traceback(CHAINED_CAUSE)
    cause, raised = trace.exceptions
    assert cause.type == "psycopg2.errors.UniqueViolation"
    assert cause.message.endswith("DETAIL:  Key (charge_id)=(ch_3Nf) already exists.")
    assert "direct cause" not in cause.message
    assert raised.type == "sqlalchemy.exc.IntegrityError"
    assert raised.message.startswith("(psycopg2.errors.UniqueViolation) duplicate key")
    assert "[SQL: INSERT INTO refunds" in raised.message
    assert raised.message.endswith("(Background on this error at: https://sqlalche.me/e/20/gkpj)")
    assert [f.function for f in raised.frames] == ["create_refund", "commit"]
    assert trace.last is raised


def test_an_exception_during_handling_is_the_last_exception_of_the_chain():
    trace = parse_traceback(DURING_HANDLING)
    assert [e.type for e in trace.exceptions] == ["ValueError", "AttributeError"]
    assert trace.exceptions[0].message == "invalid literal for int() with base 10: 'abc'"
    assert trace.last.message == "'dict' object has no attribute 'id'"
    assert [f.function for f in trace.last.frames] == ["import_file", "parse_row"]


def test_a_traceback_embedded_in_prose_and_a_code_fence_is_found():
    text = (
        "Hi, checkout crashed again for customer 42.\n\nError details:\n```\n"
        "[2025-03-01 10:22:01,123] ERROR in app: Exception on /checkout [POST]\n" + FLASK_TRACEBACK + "\n```\nThanks!"
    )
    trace = parse_traceback(text)
    assert trace.last.type == "KeyError"
    assert trace.last.message == "'discount'"
    assert len(trace.last.frames) == 4


def test_prose_after_a_blank_line_is_not_part_of_the_message():
    trace = parse_traceback(FLASK_TRACEBACK + "\n\nPlease fix asap, customers are complaining!")
    assert trace.last.message == "'discount'"


def test_an_exception_without_a_message_has_a_type_and_no_message():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/billing/tasks.py", line 12, in run_dunning\n'
        "    raise billing.errors.DunningPaused\n"
        "billing.errors.DunningPaused\n"
    )
    last = parse_traceback(text).last
    assert last.type == "billing.errors.DunningPaused"
    assert last.message is None


def test_a_message_spanning_indented_lines_is_kept_whole():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/admin/forms.py", line 9, in validate\n'
        "    return Schema.model_validate(data)\n"
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for Schema\n"
        "role\n"
        "  Field required [type=missing, input_value={'id': 3}, input_type=dict]\n"
    )
    last = parse_traceback(text).last
    assert last.type == "pydantic_core._pydantic_core.ValidationError"
    assert last.message.splitlines() == [
        "1 validation error for Schema",
        "role",
        "  Field required [type=missing, input_value={'id': 3}, input_type=dict]",
    ]


def test_recursion_markers_are_skipped():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/catalog/tree.py", line 20, in walk\n'
        "    return walk(node.parent, depth + 1)\n"
        '  File "/app/catalog/tree.py", line 20, in walk\n'
        "    return walk(node.parent, depth + 1)\n"
        "  [Previous line repeated 996 more times]\n"
        '  File "/app/catalog/tree.py", line 17, in walk\n'
        "    if node.id in seen:\n"
        "RecursionError: maximum recursion depth exceeded\n"
    )
    last = parse_traceback(text).last
    assert last.type == "RecursionError"
    assert [f.lineno for f in last.frames] == [20, 20, 17]


def test_frames_without_a_header_line_still_parse():
    text = (
        'File "C:\\work\\shop\\shop\\cart.py", line 3, in add_item\n'
        "    items[sku] += qty\n"
        "TypeError: unsupported operand type(s) for +=: 'NoneType' and 'int'"
    )
    last = parse_traceback(text).last
    assert last.type == "TypeError"
    assert last.frames[0].function == "add_item"
    assert last.frames[0].filename == "C:\\work\\shop\\shop\\cart.py"
    assert last.frames[0].in_app is True


def test_a_uniformly_indented_paste_parses_by_relative_indentation():
    indented = "\n".join("    " + line for line in FLASK_TRACEBACK.splitlines())
    last = parse_traceback("Log excerpt:\n" + indented).last
    assert last.type == "KeyError"
    assert len(last.frames) == 4


def test_windows_line_endings_are_tolerated():
    last = parse_traceback(FLASK_TRACEBACK.replace("\n", "\r\n")).last
    assert last.type == "KeyError"
    assert last.message == "'discount'"
    assert last.frames[-1].function == "total_for"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no traceback here",
        "Traceback (most recent call last):",
        'File "x.py"',
        'Traceback (most recent call last):\n  File "x.py", line',
        "\x00\x00\x00",
        'Traceback (most recent call last):\n  File "a.py", line 1, in f\n',
        "```\n```",
        None,
        42,
        ["Traceback"],
        'File "' * 10_000,
    ],
)
def test_bad_input_never_raises(text):
    result = parse_traceback(text)
    assert result is None or isinstance(result.exceptions, tuple)


def test_text_without_a_traceback_gives_none():
    assert parse_traceback("KeyError: 'x' happened when I clicked Save") is None


def test_a_truncated_traceback_keeps_its_frames_without_an_exception():
    trace = parse_traceback('Traceback (most recent call last):\n  File "/app/x.py", line 1, in f\n')
    assert trace.last.type is None
    assert trace.last.frames[0].function == "f"


def test_last_is_none_for_an_empty_trace():
    from bugdesk.fingerprint import ParsedTrace

    assert ParsedTrace(exceptions=()).last is None
    assert isinstance(parse_traceback(FLASK_TRACEBACK).last, ExceptionInfo)


# ------------------------------------------------------------------------------------------
# structured frames
# ------------------------------------------------------------------------------------------
def test_legacy_gen2_frames_are_read_and_classified_by_path():
    frames = frames_from_list(
        [
            {
                "file": "/srv/app/venv/lib/python3.11/site-packages/celery/app/trace.py",
                "line": 477,
                "function": "trace_task",
                "module": "celery.app.trace",
            },
            {"file": "app/admin/tasks.py", "line": 77, "function": "rotate", "module": "app.admin.tasks"},
        ]
    )
    assert frames == (
        Frame(
            "/srv/app/venv/lib/python3.11/site-packages/celery/app/trace.py",
            "celery.app.trace",
            "trace_task",
            477,
            False,
        ),
        Frame("app/admin/tasks.py", "app.admin.tasks", "rotate", 77, True),
    )


def test_sentry_frames_prefer_abs_path_and_keep_the_in_app_flag():
    frames = frames_from_list(
        [
            {
                "filename": "shop/orders/views.py",
                "abs_path": "/app/shop/orders/views.py",
                "module": "shop.orders.views",
                "function": "place_order",
                "lineno": 41,
                "in_app": True,
            },
            {"filename": "vendored/util.py", "function": "helper", "lineno": 3, "in_app": False},
        ]
    )
    assert frames[0] == Frame("/app/shop/orders/views.py", "shop.orders.views", "place_order", 41, True)
    assert frames[1].in_app is False


def test_garbage_frame_entries_are_skipped_and_wrong_types_dropped():
    frames = frames_from_list(
        [
            None,
            1,
            "frame",
            [],
            {},
            {"file": 5, "function": None},
            {"filename": "a.py", "lineno": "12", "function": "f", "in_app": "yes"},
            {"file": "b.py", "line": True, "function": ["x"]},
            {"module": "pkg.mod"},
        ]
    )
    assert frames == (
        Frame("a.py", None, "f", 12, True),
        Frame("b.py", None, None, None, True),
        Frame(None, "pkg.mod", None, None, None),
    )


@pytest.mark.parametrize("items", [None, 3, "abc", {"file": "x.py"}, b"bytes"])
def test_frames_from_something_that_is_not_a_list_is_empty(items):
    assert frames_from_list(items) == ()
