"""Kiln's settings from the environment: read and validated in this one place.

Everything that can be configured is a field of `Config`. `load_config()` reads the
environment once and raises `ConfigError` naming the bad variable, so a mistake stops
start-up with one clear line instead of failing later somewhere deep.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url

EMBEDDED = "embedded"
PRODUCTION = "production"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Config:
    mode: str
    debug: bool
    data_dir: Path
    secret_key: str
    database: dict
    database_url: str
    redis_url: str | None
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    bind: str
    signup_open: bool
    worker_name: str
    scheduler_tick_seconds: float
    heartbeat_seconds: float
    worker_timeout_seconds: float
    admin_user: str
    admin_password: str | None
    demo: bool
    static_root: Path
    storage_dir: Path = field(init=False)
    broker_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "storage_dir", self.data_dir / "artifacts")
        object.__setattr__(self, "broker_dir", self.data_dir / "broker")

    @property
    def broker_url(self) -> str:
        """Redis when REDIS_URL is set; otherwise kombu's server-less filesystem transport."""
        return self.redis_url or "filesystem://"

    @property
    def broker_transport_options(self) -> dict:
        if self.redis_url:
            return {"visibility_timeout": 3600}
        queue_dir = str(self.broker_dir / "queue")
        return {
            "data_folder_in": queue_dir,
            "data_folder_out": queue_dir,
            "control_folder": str(self.broker_dir / "control"),
            "store_processed": False,
        }

    @property
    def database_vendor(self) -> str:
        return "postgresql" if "postgresql" in self.database["ENGINE"] else "sqlite"


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Read and validate Kiln's settings; raise ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    mode = env.get("KILN_MODE", EMBEDDED).strip().lower()
    if mode not in (EMBEDDED, PRODUCTION):
        raise ConfigError(f"KILN_MODE must be '{EMBEDDED}' or '{PRODUCTION}', got {mode!r}")
    production = mode == PRODUCTION

    data_dir = Path(env.get("KILN_DATA_DIR") or "var").expanduser().resolve()
    default_db = f"sqlite:///{data_dir / 'kiln.sqlite3'}"
    database_url = env.get("DATABASE_URL") or default_db
    redis_url = _redis_url(env.get("REDIS_URL") or None)

    secret_key = _secret_key(env, data_dir, production)
    allowed_hosts = _list(env, "KILN_ALLOWED_HOSTS", default="" if production else "127.0.0.1,localhost")
    if production and not allowed_hosts:
        raise ConfigError("KILN_ALLOWED_HOSTS is required when KILN_MODE=production (e.g. kiln.example.com)")

    return Config(
        mode=mode,
        debug=_bool(env, "KILN_DEBUG", default=False),
        data_dir=data_dir,
        secret_key=secret_key,
        database=_database(database_url),
        database_url=database_url,
        redis_url=redis_url,
        allowed_hosts=allowed_hosts,
        csrf_trusted_origins=_list(env, "KILN_CSRF_TRUSTED_ORIGINS", default=""),
        bind=env.get("KILN_BIND", "127.0.0.1:8000"),
        signup_open=_bool(env, "KILN_SIGNUP_OPEN", default=True),
        worker_name=env.get("KILN_WORKER_NAME") or os.uname().nodename,
        scheduler_tick_seconds=_positive_float(env, "KILN_SCHEDULER_TICK", default=2.0),
        heartbeat_seconds=_positive_float(env, "KILN_HEARTBEAT_SECONDS", default=5.0),
        worker_timeout_seconds=_positive_float(env, "KILN_WORKER_TIMEOUT", default=30.0),
        admin_user=env.get("KILN_ADMIN_USER") or "admin",
        admin_password=env.get("KILN_ADMIN_PASSWORD") or None,
        demo=_bool(env, "KILN_DEMO", default=not production),
        static_root=Path(env.get("KILN_STATIC_ROOT") or data_dir / "static").resolve(),
    )


def _database(url: str) -> dict:
    scheme = urlparse(url).scheme
    if scheme not in ("sqlite", "postgres", "postgresql", "pgsql"):
        raise ConfigError(f"DATABASE_URL must start with sqlite:// or postgresql://, got scheme {scheme!r}")
    try:
        parsed = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"DATABASE_URL is malformed: {exc}") from None
    if scheme != "sqlite" and not parsed.get("NAME"):
        raise ConfigError("DATABASE_URL names no database (expected postgresql://user@host:port/NAME)")
    if scheme == "sqlite":
        # NOTE: IMMEDIATE takes the write lock when a transaction starts, so concurrent writers
        # (web, scheduler, worker) wait for each other instead of failing with "database is locked".
        parsed["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    return dict(parsed)


def _redis_url(url: str | None) -> str | None:
    if url is None:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ConfigError(f"REDIS_URL must look like redis://host:6379/0, got {url!r}")
    try:
        parsed.port  # noqa: B018 -- raises ValueError on a non-numeric port
    except ValueError:
        raise ConfigError(f"REDIS_URL has a bad port: {url!r}") from None
    return url


def _secret_key(env: Mapping[str, str], data_dir: Path, production: bool) -> str:
    key = env.get("SECRET_KEY", "")
    if key:
        if production and len(key) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        return key
    if production:
        raise ConfigError("SECRET_KEY is required when KILN_MODE=production")
    # NOTE: embedded mode keeps a generated key under the data dir so sessions survive restarts.
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    # NOTE: written to a private temp file, then hard-linked into place: atomic, and the
    # first of several processes starting at once wins while the others read its key.
    tmp = data_dir / f".secret_key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _positive_float(env: Mapping[str, str], name: str, *, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _list(env: Mapping[str, str], name: str, *, default: str) -> list[str]:
    return [item.strip() for item in env.get(name, default).split(",") if item.strip()]
