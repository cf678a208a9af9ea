"""Settings: one place that knows the defaults, ``bugdesk.toml`` and the ``BUGDESK_*`` environment.

Precedence, lowest first: built-in defaults, ``bugdesk.toml`` in the working
directory (or the file named by ``BUGDESK_CONFIG``), environment variables,
then explicit command-line options (applied by the caller via ``replace``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bugdesk.errors import ConfigError

SEVERITIES = ("critical", "high", "medium", "low")

DEFAULT_SLA_HOURS = {"critical": 4.0, "high": 24.0, "medium": 72.0, "low": 336.0}


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///bugdesk.db"
    # Hours from creation to the SLA due time, per severity.
    sla_hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))
    lease_seconds: int = 600
    # A fingerprint whose canonical is closed still joins it when seen within this window.
    dedup_window_hours: float = 72.0
    # At most one `occurrence` event per canonical in this interval; counts are always exact.
    occurrence_event_seconds: int = 600
    # Failed agent runs after which a report is flagged for a human.
    max_agent_attempts: int = 3
    sqlite_busy_timeout_ms: int = 10_000
    # SQLite's page cache, MB per connection, where a process holds one (CLI, TUI, import, sync): large for big scans.
    sqlite_cache_mb: int = 64
    # A pooled SQLite database (each API worker, the MCP servers): how many connections the pool holds and each
    # one's page cache. The caches fill as the database grows, so a worker's page cache is bounded by the product
    # (8 x 2 = 16 MB) rather than growing with the pool; the operating system's file cache keeps the rest of the
    # hot pages a copy away. SQLite has one writer at a time and Python runs one thread of a process at a time,
    # so more connections than this only wait, with memory of their own.
    sqlite_pool_size: int = 8
    sqlite_pool_cache_mb: int = 2
    # PostgreSQL connections each API worker process may hold (its threadpool runs 40 requests at most).
    database_pool_size: int = 64
    api_body_limit_bytes: int = 1_048_576
    # Admission control, per worker process (bugdesk/api/admission.py); 0 in-flight turns it off.
    # 32 writes in the SQLite write queue at ~2 ms each is ~65 ms behind: an admitted request still answers
    # fast. The 32 slots only reads may take keep GETs going through an ingest storm. Submissions get 16 of
    # the write slots: enough queued work to keep the writer busy (~30 ms); an agent's claim or resolve is
    # batched ahead of queued submissions (bugdesk/api/deps.py) but still shares the worker's CPU with them.
    api_max_in_flight: int = 64
    api_max_writes_in_flight: int = 32
    api_max_ingest_in_flight: int = 16
    # How long a request over the bound waits for a slot before its 429 (absorbs short bursts).
    api_queue_wait_ms: int = 100
    # A submission is shed at once while the oldest one in the SQLite write queue has waited longer than this
    # (0: off). Slots count requests, not how long they take: this keeps the queue short whatever a write costs.
    # Off by default: 50 ms was neutral in the soak and shed submissions of 4 clients whenever another process
    # (the CLI) held SQLite's lock for a moment (tests/reliability/test_sqlite_two_writers.py).
    api_ingest_queue_target_ms: int = 0
    backlog_threshold: int = 100
    backlog_max_age_hours: float = 24.0
    sla_breach_threshold: int = 0
    # The release this server runs (a commit SHA or a version): fills `release_sha` of submissions that lack one.
    release: str = ""

    def sla_for(self, severity: str) -> timedelta:
        return timedelta(hours=self.sla_hours[severity])

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    @property
    def dedup_window(self) -> timedelta:
        return timedelta(hours=self.dedup_window_hours)


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults < bugdesk.toml < BUGDESK_* environment < ``overrides`` (None values ignored)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    layers = (
        _from_toml(Path(env.get("BUGDESK_CONFIG", "bugdesk.toml"))),
        _from_env(env),
        {k: v for k, v in overrides.items() if v is not None},
    )
    for layer in layers:
        for name, value in layer.items():
            if name == "sla_hours" and isinstance(value, dict):
                value = {**values.get("sla_hours", {}), **value}  # severities merge across layers
            values[name] = value
    return _build(values)


def _from_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    # Accept both a flat file and one with a [bugdesk] table.
    return dict(data.get("bugdesk", data))


def _from_env(env: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = f"BUGDESK_{f.name.upper()}"
        if f.name == "sla_hours":
            sla = {
                s: env[f"BUGDESK_SLA_{s.upper()}_HOURS"] for s in SEVERITIES if f"BUGDESK_SLA_{s.upper()}_HOURS" in env
            }
            if sla:
                values["sla_hours"] = sla
        elif key in env:
            values[f.name] = env[key]
    return values


def _build(values: dict[str, Any]) -> Settings:
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(known)}")
    base = Settings()
    converted: dict[str, Any] = {}
    for name, raw in values.items():
        default = getattr(base, name)
        try:
            if name == "sla_hours":
                merged = dict(base.sla_hours)
                merged.update({k: float(v) for k, v in dict(raw).items()})
                if set(merged) != set(SEVERITIES) or any(h <= 0 for h in merged.values()):
                    raise ValueError(f"needs positive hours for {', '.join(SEVERITIES)}")
                converted[name] = merged
            elif isinstance(default, str):
                converted[name] = str(raw)
            else:
                converted[name] = type(default)(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {name}={raw!r} is not valid: {exc}") from exc
    bounds = ("api_max_in_flight", "api_max_writes_in_flight", "api_max_ingest_in_flight", "api_queue_wait_ms")
    for name in (*bounds, "api_ingest_queue_target_ms"):
        if converted.get(name, 0) < 0:
            raise ConfigError(f"setting {name}={converted[name]} is not valid: it cannot be negative")
    for name in ("database_pool_size", "sqlite_pool_size", "sqlite_cache_mb", "sqlite_pool_cache_mb"):
        if converted.get(name, 1) < 1:
            raise ConfigError(f"setting {name}={converted[name]} is not valid: at least 1")
    return replace(base, **converted)
