"""Settings: defaults, bugdesk.toml, environment, and clear errors for bad values."""

from __future__ import annotations

import pytest

from bugdesk.config import load_settings
from bugdesk.errors import ConfigError


def test_defaults_need_no_configuration(tmp_path):
    settings = load_settings({"BUGDESK_CONFIG": str(tmp_path / "none.toml")})
    assert settings.database_url == "sqlite:///bugdesk.db"
    assert settings.sla_for("critical").total_seconds() == 4 * 3600


def test_environment_overrides_the_toml_file_which_overrides_defaults(tmp_path):
    toml = tmp_path / "bugdesk.toml"
    toml.write_text("lease_seconds = 120\ndedup_window_hours = 5\n[sla_hours]\nlow = 100\n")
    settings = load_settings(
        {"BUGDESK_CONFIG": str(toml), "BUGDESK_LEASE_SECONDS": "30", "BUGDESK_SLA_CRITICAL_HOURS": "1"}
    )
    assert settings.lease_seconds == 30
    assert settings.dedup_window_hours == 5.0
    assert settings.sla_hours["low"] == 100.0 and settings.sla_hours["critical"] == 1.0


def test_a_bad_value_names_the_setting(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings({"BUGDESK_CONFIG": str(tmp_path / "x"), "BUGDESK_LEASE_SECONDS": "ten"})
    assert "lease_seconds" in str(info.value)


def test_an_unknown_setting_in_the_file_is_refused(tmp_path):
    toml = tmp_path / "bugdesk.toml"
    toml.write_text("leese_seconds = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"BUGDESK_CONFIG": str(toml)})
    assert "leese_seconds" in str(info.value)


def test_the_pool_size_per_worker_comes_from_the_environment_and_must_be_positive():
    from bugdesk.api.app import pool_url

    settings = load_settings({"BUGDESK_DATABASE_POOL_SIZE": "12"})
    assert settings.database_pool_size == 12
    assert "max_connections=12" in pool_url("postgresql://u@h/db", max_connections=settings.database_pool_size)
    with pytest.raises(ConfigError, match="database_pool_size"):
        load_settings({"BUGDESK_DATABASE_POOL_SIZE": "0"})


@pytest.mark.parametrize("name", ["sqlite_pool_size", "sqlite_cache_mb", "sqlite_pool_cache_mb"])
def test_the_sqlite_pool_and_cache_sizes_come_from_the_environment_and_must_be_positive(name):
    assert getattr(load_settings({f"BUGDESK_{name.upper()}": "3"}), name) == 3
    with pytest.raises(ConfigError, match=name):
        load_settings({f"BUGDESK_{name.upper()}": "0"})
