"""Normalisation: library paths, frame keys, repository paths, components, routes, messages."""

from __future__ import annotations

import pytest

from bugdesk.fingerprint import (
    Frame,
    component_from_frames,
    normalize_message,
    parse_traceback,
    repo_path_hints,
    route_template,
)
from bugdesk.fingerprint.normalize import (
    exception_type_name,
    frame_key,
    normalize_title,
    repo_relative_path,
)
from bugdesk.fingerprint.traceback import is_library_path


@pytest.mark.parametrize(
    "path",
    [
        "/srv/x/venv/lib/python3.11/site-packages/flask/app.py",
        "/usr/lib/python3/dist-packages/requests/sessions.py",
        "/usr/lib/python3.12/json/decoder.py",
        "/usr/local/lib/python3.11/socket.py",
        "/home/u/.pyenv/versions/3.12.4/lib/python3.12/json/__init__.py",
        "/Library/Frameworks/Python.framework/Versions/3.12/lib/python3.12/ssl.py",
        "C:\\Python311\\Lib\\json\\decoder.py",
        "C:\\work\\shop\\.venv\\Lib\\site-packages\\django\\core\\handlers\\base.py",
        "<frozen importlib._bootstrap>",
        "<string>",
    ],
)
def test_library_and_stdlib_paths_are_recognised(path):
    assert is_library_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "/srv/shop/releases/4f2a9c1e/shop/orders/views.py",
        "/app/shop/lib/pricing.py",
        "app/payments/charge.py",
        "/Users/ana/code/crm/crm/contacts/importer.py",
        "C:\\work\\shop\\shop\\cart.py",
    ],
)
def test_application_paths_are_in_app(path):
    assert not is_library_path(path)


def test_a_frame_key_is_the_module_basename_and_the_function():
    assert frame_key("/srv/a/releases/1/shop/pay/charge.py", None, "capture") == "charge:capture"
    assert frame_key("shop/pay/domain/charge.py", None, "capture") == "charge:capture"
    assert frame_key("C:\\shop\\pay\\charge.py", None, "capture") == "charge:capture"
    assert frame_key("/app/shop/pay/__init__.py", None, "setup") == "pay:setup"
    assert frame_key(None, "shop.pay.charge", "capture") == "charge:capture"
    assert frame_key("/app/shop/pay/charge.py", None, "Charger.capture") == "charge:capture"
    assert frame_key(None, None, None) == "?:?"


def test_an_exception_type_is_reduced_to_its_class_name():
    assert exception_type_name("stripe.error.CardError") == "CardError"
    assert exception_type_name("stripe._error.CardError") == "CardError"
    assert exception_type_name("KeyError") == "KeyError"
    assert exception_type_name("  ") is None
    assert exception_type_name(None) is None


# ------------------------------------------------------------------------------------------
# repository-relative paths and components
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/srv/shop/releases/0196050d4f3312773179d3afc9b2d1f984aca23b/shop/pay/charge.py",
        "/srv/shop-staging/releases/2.14.1/shop/pay/charge.py",
        "/var/www/shop/current/shop/pay/charge.py",
        "/app/shop/pay/charge.py",
        "/usr/src/app/shop/pay/charge.py",
        "/opt/shop/shop/pay/charge.py",
        "/Users/maria/code/storefront/shop/pay/charge.py",
        "/home/jonas/src/storefront/shop/pay/charge.py",
        "/home/jonas/storefront/shop/pay/charge.py",
        "shop/pay/charge.py",
        "./shop/pay/charge.py",
        "C:\\Users\\li\\projects\\storefront\\shop\\pay\\charge.py",
    ],
)
def test_deploy_container_and_laptop_prefixes_are_stripped(path):
    assert repo_relative_path(path) == "shop/pay/charge.py"


def test_a_module_name_pins_the_repository_path():
    assert repo_relative_path("/weird/mount/x/shop/pay/charge.py", "shop.pay.charge") == "shop/pay/charge.py"


def test_a_virtualenv_inside_the_project_marks_the_project_root():
    frames = (
        Frame("/data/ci/build-7/.venv/lib/python3.12/site-packages/rq/job.py", None, "perform", 1, False),
        Frame("/data/ci/build-7/tracker/jobs/sync.py", None, "sync_all", 31, True),
        Frame("/data/ci/build-7/tracker/jobs/sync.py", None, "sync_one", 48, True),
    )
    assert repo_path_hints(frames) == ["tracker/jobs/sync.py:48", "tracker/jobs/sync.py:31"]
    assert component_from_frames(frames) == "jobs"


def test_repo_path_hints_are_in_app_innermost_first_and_deduplicated():
    trace = parse_traceback(
        "Traceback (most recent call last):\n"
        '  File "/srv/shop/venv/lib/python3.12/site-packages/flask/app.py", line 865, in dispatch\n'
        '  File "/srv/shop/releases/ab12cd34/shop/orders/views.py", line 41, in place_order\n'
        '  File "/srv/shop/releases/ab12cd34/shop/pay/domain/webhooks.py", line 88, in apply\n'
        '  File "/srv/shop/releases/ab12cd34/shop/pay/domain/webhooks.py", line 88, in apply\n'
        '  File "/usr/lib/python3.12/json/decoder.py", line 355, in raw_decode\n'
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n"
    )
    frames = trace.last.frames
    assert repo_path_hints(frames) == [
        "shop/pay/domain/webhooks.py:88",
        "shop/orders/views.py:41",
    ]
    assert component_from_frames(frames) == "pay"


def test_structured_frames_use_their_module_for_paths():
    frames = (
        Frame("app/payments/charge.py", "app.payments.charge", "charge", 88, True),
        Frame("/usr/lib/python3.11/json/decoder.py", "json.decoder", "raw_decode", 355, False),
    )
    assert repo_path_hints(frames) == ["app/payments/charge.py:88"]
    assert component_from_frames(frames) == "payments"


def test_no_component_without_in_app_frames():
    assert component_from_frames(()) is None
    assert component_from_frames(None) is None
    lib = Frame("/usr/lib/python3.12/json/decoder.py", None, "raw_decode", 355, False)
    assert component_from_frames((lib,)) is None
    assert repo_path_hints([lib]) == []


# ------------------------------------------------------------------------------------------
# routes
# ------------------------------------------------------------------------------------------
def test_the_three_spellings_of_one_route_agree():
    assert (
        route_template("/api/invoices/123")
        == route_template("/api/invoices/<int:invoice_id>")
        == route_template("/api/invoices/{invoice_id}")
        == "/api/invoices/{id}"
    )


@pytest.mark.parametrize(
    ("raw", "template"),
    [
        ("/api/invoices/123?x=1", "/api/invoices/{id}"),
        ("POST /checkout/pay", "/checkout/pay"),
        ("get /api/orders/42/items/", "/api/orders/{id}/items"),
        ("/uploads/6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b", "/uploads/{id}"),
        ("/uploads/<uuid:file_id>", "/uploads/{id}"),
        ("/files/9f86d081884c7d659a2feaa0c55ad015", "/files/{id}"),
        ("/api/inventory/SKU-00123-BL", "/api/inventory/{id}"),
        ("/api/inventory/<sku>", "/api/inventory/{id}"),
        ("/unsubscribe/MzcqwC9GETwXjfuuokJaab", "/unsubscribe/{id}"),
        ("/users/:user_id/orders", "/users/{id}/orders"),
        ("/users/ana@example.com", "/users/{id}"),
        ("/api/v2/customers", "/api/v2/customers"),
        ("https://shop.example.com/cart/items#top", "/cart/items"),
        ("/", "/"),
        ("/healthz", "/healthz"),
    ],
)
def test_route_templates_replace_ids_and_drop_method_and_query(raw, template):
    assert route_template(raw) == template


@pytest.mark.parametrize("raw", [None, "", "   ", "?x=1", 42])
def test_no_route_gives_none(raw):
    assert route_template(raw) is None


# ------------------------------------------------------------------------------------------
# messages and titles
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("'NoneType' object has no attribute 'email'", "<str> object has no attribute <str>"),
        (
            "cannot identify image file <_io.BytesIO object at 0x7f3a2c1b9e80>",
            "cannot identify image file <_io.BytesIO object at <addr>>",
        ),
        ("invalid credentials for ana.smith+shop@example.co.uk", "invalid credentials for <email>"),
        ("cart 6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b expired", "cart <uuid> expired"),
        ("token for user 4711 expired at 2025-03-01T12:22:01Z", "token for user <n> expired at <date>"),
        ("charged 12.50 instead of 1,234.00", "charged <n> instead of <n>"),
        ("Request req_sCZ2quZsM2YsOE: declined", "Request <id>: declined"),
        ("commit 9f86d081884c7d659a2f not found", "commit <hex> not found"),
        (
            "'ascii' codec can't encode character '\\xe9' in position 17",
            "<str> codec can't encode character <str> in position <n>",
        ),
        ("  spread\n\tover   lines ", "spread over lines"),
        ("see https://sqlalche.me/e/20/gkpj", "see <url>"),
    ],
)
def test_variable_data_in_messages_becomes_placeholders(message, normalised):
    assert normalize_message(message) == normalised


def test_no_message_gives_none():
    assert normalize_message(None) is None
    assert normalize_message("   ") is None


def test_titles_ignore_case_punctuation_and_numbers():
    assert normalize_title("Coupon not applied again!!") == normalize_title("coupon not applied again")
    assert normalize_title("500 error (order #5252298)") == normalize_title("500 Error (order #17)")
    assert normalize_title(None) is None


def test_a_user_site_directory_is_not_mistaken_for_the_project_root():
    frames = (
        Frame("/home/li/.local/lib/python3.12/site-packages/rq/job.py", None, "perform", 1, False),
        Frame("/home/li/src/tracker/tracker/jobs/sync.py", None, "sync_all", 31, True),
    )
    assert repo_path_hints(frames) == ["tracker/jobs/sync.py:31"]


def test_malformed_frames_are_ignored_by_the_path_helpers():
    junk = [None, "x", Frame(5, None, "f", 1, True), Frame(None, ["m"], "f", 1, True)]
    good = Frame("/app/shop/pay/charge.py", None, "capture", 9, None)
    assert repo_path_hints([*junk, good]) == ["shop/pay/charge.py:9"]
    assert component_from_frames([*junk, good]) == "pay"
    assert repo_path_hints(42) == []
