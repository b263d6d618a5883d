"""Settings come from the environment, are validated once, and name the bad variable."""

import stat

import pytest

from webapp.config import ConfigError, load_config


def test_soft_deleted_rows_are_kept_thirty_days_unless_set(tmp_path):
    assert load_config({"KILN_DATA_DIR": str(tmp_path)}).deleted_retention_days == 30.0
    assert load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_DELETED_RETENTION_DAYS": "0.5"}).deleted_retention_days == 0.5


def test_embedded_defaults_use_sqlite_and_the_serverless_broker(tmp_path):
    config = load_config({"KILN_DATA_DIR": str(tmp_path)})
    assert config.database_vendor == "sqlite"
    assert config.database["NAME"] == str(tmp_path / "kiln.sqlite3")
    assert config.broker_url == "filesystem://"
    assert config.broker_transport_options["data_folder_in"] == str(tmp_path / "broker" / "queue")
    assert config.debug is False
    assert config.bind == "127.0.0.1:8000"


def test_embedded_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = load_config({"KILN_DATA_DIR": str(tmp_path)}).secret_key
    second = load_config({"KILN_DATA_DIR": str(tmp_path)}).secret_key
    assert first == second and len(first) >= 50
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_postgres_and_redis_urls_switch_the_backends(tmp_path):
    config = load_config(
        {
            "KILN_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgresql://kiln:pw@db.internal:5433/kiln",
            "REDIS_URL": "redis://cache:6379/2",
        }
    )
    assert config.database_vendor == "postgresql"
    assert (config.database["HOST"], config.database["PORT"], config.database["NAME"]) == ("db.internal", 5433, "kiln")
    assert config.broker_url == "redis://cache:6379/2"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://user@host:5432/"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://cache"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://cache:port/0"}, "REDIS_URL"),
        ({"KILN_DEBUG": "maybe"}, "KILN_DEBUG"),
        ({"KILN_SCHEDULER_TICK": "-1"}, "KILN_SCHEDULER_TICK"),
        ({"KILN_MODE": "staging"}, "KILN_MODE"),
        ({"KILN_BWRAP": "/no/such/bwrap"}, "KILN_BWRAP"),
        ({"KILN_DELETED_RETENTION_DAYS": "0"}, "KILN_DELETED_RETENTION_DAYS"),
        ({"KILN_DELETED_RETENTION_DAYS": "nan"}, "KILN_DELETED_RETENTION_DAYS"),
        ({"KILN_DELETED_RETENTION_DAYS": "inf"}, "KILN_DELETED_RETENTION_DAYS"),
    ],
)
def test_a_bad_value_raises_an_error_naming_the_variable(tmp_path, env, named):
    with pytest.raises(ConfigError, match=named):
        load_config({"KILN_DATA_DIR": str(tmp_path), **env})


def test_production_requires_a_secret_key_and_allowed_hosts(tmp_path):
    base = {"KILN_DATA_DIR": str(tmp_path), "KILN_MODE": "production"}
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(base)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({**base, "SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="KILN_ALLOWED_HOSTS"):
        load_config({**base, "SECRET_KEY": "k" * 40})
    config = load_config({**base, "SECRET_KEY": "k" * 40, "KILN_ALLOWED_HOSTS": "kiln.example.com"})
    assert config.allowed_hosts == ["kiln.example.com"] and config.debug is False
    assert not (tmp_path / "secret_key").exists()


def test_secrets_never_show_in_the_config_repr(tmp_path):
    config = load_config({
        "KILN_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://kiln:db-pw-1@db:5432/kiln",
        "REDIS_URL": "redis://:redis-pw-2@redis:6379/0", "SECRET_KEY": "k" * 40, "KILN_ADMIN_PASSWORD": "admin-pw-3",
    })
    shown = repr(config)
    assert "db:5432" not in shown and "db-pw-1" not in shown and "redis-pw-2" not in shown
    assert "k" * 40 not in shown and "admin-pw-3" not in shown
    assert "embedded" in shown  # the harmless settings are still there to read


@pytest.mark.parametrize("raw", ["-1", "two", "11"])
def test_trusted_proxies_is_a_small_count(tmp_path, raw):
    assert load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_TRUSTED_PROXIES": "1"}).trusted_proxies == 1
    with pytest.raises(ConfigError, match="KILN_TRUSTED_PROXIES"):
        load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_TRUSTED_PROXIES": raw})


def test_postgresql_connections_fail_fast_on_a_dead_link(tmp_path):
    config = load_config({"KILN_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://kiln@db:5432/kiln"})
    assert config.database["OPTIONS"]["connect_timeout"] == 10 and config.database["OPTIONS"]["keepalives_idle"] == 30
    custom = load_config({"KILN_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://kiln@db/kiln?connect_timeout=3"})
    assert str(custom.database["OPTIONS"]["connect_timeout"]) == "3"


def test_the_api_rate_limit_reads_requests_per_seconds(tmp_path):
    assert load_config({"KILN_DATA_DIR": str(tmp_path)}).api_rate_limit == (60_000, 60)
    assert load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_API_RATE_LIMIT": "100/1"}).api_rate_limit == (100, 1)
    for raw in ("100", "0/60", "100/0", "a/b", "-5/60", "²/60", "100/86401"):
        with pytest.raises(ConfigError, match="KILN_API_RATE_LIMIT"):
            load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_API_RATE_LIMIT": raw})


def test_sign_up_starts_closed_in_production_and_open_on_one_machine(tmp_path):
    production = {"KILN_MODE": "production", "SECRET_KEY": "s" * 40, "KILN_ALLOWED_HOSTS": "kiln.example.com",
                  "KILN_DATA_DIR": str(tmp_path)}
    assert load_config(production).signup_open is False
    assert load_config({**production, "KILN_SIGNUP_OPEN": "true"}).signup_open is True
    assert load_config({"KILN_DATA_DIR": str(tmp_path)}).signup_open is True


def test_kiln_bwrap_names_bubblewrap_or_turns_it_off(tmp_path):
    assert load_config({"KILN_DATA_DIR": str(tmp_path)}).bwrap == ""  # found on PATH
    assert load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_BWRAP": "none"}).bwrap == "none"
    assert load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_BWRAP": "/bin/sh"}).bwrap == "/bin/sh"


def test_worker_capacity_is_detected_unless_set(tmp_path):
    detected = load_config({"KILN_DATA_DIR": str(tmp_path)})
    assert (detected.worker_cpus, detected.worker_memory_gb) == (None, None)
    config = load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_WORKER_CPUS": " 6 ", "KILN_WORKER_MEMORY_GB": "12.5"})
    assert (config.worker_cpus, config.worker_memory_gb) == (6, 12.5)


@pytest.mark.parametrize("raw", ["0", "-2", "1.5", "four", "4097", "true"])
def test_a_bad_worker_cpu_count_names_kiln_worker_cpus(tmp_path, raw):
    with pytest.raises(ConfigError, match=r"KILN_WORKER_CPUS must be a whole number from 1 to 4096, got "):
        load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_WORKER_CPUS": raw})


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "lots", "70000"])
def test_a_bad_worker_memory_names_kiln_worker_memory_gb(tmp_path, raw):
    with pytest.raises(ConfigError, match=r"KILN_WORKER_MEMORY_GB must be a number of GB above 0"):
        load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_WORKER_MEMORY_GB": raw})
