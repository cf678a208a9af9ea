"""Health, the status summary, and Prometheus metrics."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from fastapi import APIRouter, Request, Response

from bugdesk import queries
from bugdesk.api.admission import AdmissionState
from bugdesk.api.deps import DatabaseRoute, Reader, SettingsDep
from bugdesk.api.middleware import BUCKETS, RequestMetrics
from bugdesk.api.schemas import AUTH, Health, StatusSummary, problems
from bugdesk.db import database, is_sqlite
from bugdesk.lifecycle import SEVERITIES, STATUSES

router = APIRouter(prefix="/api", tags=["meta"], route_class=DatabaseRoute)

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"

try:
    VERSION = metadata.version("bugdesk")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0"


@router.get("/health", response_model=Health, summary="Liveness and database check", responses=problems(503))
def health(settings: SettingsDep) -> dict[str, Any]:
    """`ok` when the database answers; needs no token."""
    database.execute_sql("SELECT 1").fetchone()
    return {
        "status": "ok",
        "database": "sqlite" if is_sqlite() else "postgresql",
        "version": VERSION,
        "release": settings.release or None,
    }


@router.get("/status", response_model=StatusSummary, summary="Status summary", responses=problems(*AUTH))
def status(actor: Reader) -> dict[str, Any]:
    """Counts by status and severity, SLA breaches, oldest open report, active claims, reports needing a human."""
    return queries.status_summary()


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {PROMETHEUS: {"schema": {"type": "string"}}}}, **problems(*AUTH)},
)
def metrics(actor: Reader, request: Request) -> Response:
    """Report gauges from the status summary and this worker's request latency histograms (text format 0.0.4)."""
    text = render_metrics(queries.status_summary(), request.app.state.metrics, request.app.state.admission)
    return Response(text, media_type=PROMETHEUS)


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def render_metrics(summary: dict[str, Any], requests: RequestMetrics, admission: AdmissionState | None = None) -> str:
    """The Prometheus text exposition of ``summary``, ``requests`` and ``admission``."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    family("bugdesk_reports", "gauge", "Canonical reports by status and severity.")
    for st in STATUSES:
        for sev in SEVERITIES:
            out.append(f"bugdesk_reports{_labels(status=st, severity=sev)} {summary['counts'][st][sev]}")
    family("bugdesk_open_reports", "gauge", "Open canonical reports.")
    out.append(f"bugdesk_open_reports {summary['open']}")
    family("bugdesk_duplicate_reports", "gauge", "Reports stored as duplicates of a canonical.")
    out.append(f"bugdesk_duplicate_reports {summary['duplicates']}")
    family("bugdesk_sla_breaches", "gauge", "Open canonical reports past their SLA due time.")
    for sev in SEVERITIES:
        out.append(f"bugdesk_sla_breaches{_labels(severity=sev)} {summary['sla_breaches_by_severity'][sev]}")
    family("bugdesk_active_claims", "gauge", "Reports under a live claim.")
    out.append(f"bugdesk_active_claims {summary['active_claims']}")
    family("bugdesk_needs_human", "gauge", "Open reports flagged for a human after failed agent runs.")
    out.append(f"bugdesk_needs_human {summary['needs_human']}")
    oldest = summary["oldest_open"]
    family("bugdesk_oldest_open_age_seconds", "gauge", "Age of the oldest open canonical report (0 when none).")
    out.append(f"bugdesk_oldest_open_age_seconds {oldest['age_seconds'] if oldest else 0}")

    name = "bugdesk_http_request_duration_seconds"
    family(name, "histogram", "HTTP request latency in this worker process.")
    for key in sorted(requests.counts):
        method, route, code = key
        labels = {"method": method, "route": route, "status": code}
        for bound, count in zip(BUCKETS, requests.buckets[key], strict=True):
            out.append(f"{name}_bucket{_labels(**labels, le=bound)} {count}")
        out.append(f"{name}_bucket{_labels(**labels, le='+Inf')} {requests.counts[key]}")
        out.append(f"{name}_sum{_labels(**labels)} {requests.sums[key]:.6f}")
        out.append(f"{name}_count{_labels(**labels)} {requests.counts[key]}")
    if admission is not None:
        family("bugdesk_http_requests_in_flight", "gauge", "Requests this worker handles now, by admission kind.")
        for kind, count in admission.in_flight.items():
            out.append(f"bugdesk_http_requests_in_flight{_labels(kind=kind)} {count}")
        family("bugdesk_http_requests_queued", "gauge", "Requests of this worker waiting for an admission slot.")
        out.append(f"bugdesk_http_requests_queued {admission.queued}")
        family("bugdesk_http_requests_shed_total", "counter", "Requests shed (429) by admission control.")
        for kind, count in admission.shed.items():
            out.append(f"bugdesk_http_requests_shed_total{_labels(kind=kind)} {count}")
    return "\n".join(out) + "\n"
