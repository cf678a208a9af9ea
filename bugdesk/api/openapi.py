"""The OpenAPI document of the agent API, as committed in ``docs/openapi.json``.

    python -m bugdesk.api.openapi > docs/openapi.json

``tests/api/test_api_openapi.py`` fails when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bugdesk.api.app import create_app
from bugdesk.config import Settings

# OpenAPI links: which answer feeds which next call (schemathesis' stateful run follows them; so can a reader).
_REF_OPS = {
    "GetReport": "get_report_api_bug_reports__ref__get",
    "UpdateReport": "update_report_api_bug_reports__ref__patch",
    "ResolveReport": "resolve_report_api_bug_reports__ref__resolve_post",
    "ReopenReport": "reopen_report_api_bug_reports__ref__reopen_post",
    "ClaimReport": "claim_report_api_bug_reports__ref__claim_post",
    "ListEvents": "list_events_api_bug_reports__ref__events_get",
    "AddEvent": "add_event_api_bug_reports__ref__events_post",
    "StartRun": "start_run_api_bug_reports__ref__runs_post",
    "ListRuns": "list_runs_api_bug_reports__ref__runs_get",
    "SplitReport": "split_api_bug_reports__ref__split_post",
}
_CLAIM_OPS = {
    "Heartbeat": "heartbeat_api_bug_reports__ref__heartbeat_post",
    "ReleaseClaim": "release_claim_api_bug_reports__ref__release_post",
    "ResolveClaimed": "resolve_report_api_bug_reports__ref__resolve_post",
}
# (path, method, status) -> {link name: (operationId, parameters, requestBody)}
_LINKS: dict[tuple[str, str, str], dict[str, tuple[str, dict[str, str], Any]]] = {
    **{
        ("/api/bug-reports", "post", status): {
            name: (op, {"ref": "$response.body#/canonical/number"}, None) for name, op in _REF_OPS.items()
        }
        for status in ("200", "201")
    },
    ("/api/bug-reports/{ref}", "get", "200"): {
        "UpdateReport": (
            _REF_OPS["UpdateReport"], {"ref": "$response.body#/number", "if-match": "$response.header.ETag"}, None
        ),
        "ClaimReport": (_REF_OPS["ClaimReport"], {"ref": "$response.body#/number"}, None),
    },
    **{
        (path, "post", "200"): {
            name: (op, {"ref": "$response.body#/report/number"}, {"claim_token": "$response.body#/claim_token"})
            for name, op in _CLAIM_OPS.items()
        }
        for path in ("/api/claims/next", "/api/bug-reports/{ref}/claim")
    },
    ("/api/bug-reports/{ref}/runs", "post", "201"): {
        "FinishRun": ("finish_run_api_runs__run_id__finish_post", {"run_id": "$response.body#/id"}, None),
    },
    ("/api/tokens", "post", "201"): {
        "RevokeToken": ("revoke_token_api_tokens__name__delete", {"name": "$response.body#/name"}, None),
    },
}  # fmt: skip


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the OpenAPI links of `_LINKS` on the answers they start from."""
    for (path, method, status), links in _LINKS.items():
        response = schema["paths"][path][method]["responses"][status]
        out = response.setdefault("links", {})
        for name, (operation_id, parameters, body) in links.items():
            link: dict[str, Any] = {"operationId": operation_id, "parameters": parameters}
            if body is not None:
                link["requestBody"] = body
            out[name] = link
    return schema


def document() -> dict[str, Any]:
    """The schema of an app built from default settings (nothing machine-specific leaks in), links included."""
    return create_app(Settings()).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
