"""Kiln's settings from the environment: read and validated in this one place.

Everything that can be configured is a field of `Config`. `load_config()` reads the
environment once and raises `ConfigError` naming the bad variable, so a mistake stops
start-up with one clear line instead of failing later somewhere deep.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url

from webapp.ids import parse_int

EMBEDDED = "embedded"
PRODUCTION = "production"
# NOTE: 1,000 requests/s per token, above all that `kiln web` answers on 2 cores (tests/benchmarks/bench_api.py), so
# a benchmark or a busy script there never meets it; on a bigger server it stops a runaway loop (HTTP 429).
DEFAULT_API_RATE_LIMIT = (60_000, 60)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
MAX_WORKER_CPUS = 4096  # KILN_WORKER_CPUS: a sanity bound, past any one host
MAX_WORKER_GPUS = 1024  # KILN_WORKER_GPUS: indices below this
MAX_WORKER_MEMORY_GB = 65536.0  # KILN_WORKER_MEMORY_GB: a sanity bound (64 TB)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class S3Storage:
    """An S3-compatible bucket for artifacts, checkpoints and code (the KILN_S3_* variables)."""

    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    endpoint_url: str | None = None
    region: str = "us-east-1"
    prefix: str = ""

    @property
    def storage_options(self) -> dict:
        """django-storages' S3Storage options; nothing is left for it to read from the environment."""
        return {
            "bucket_name": self.bucket,
            "access_key": self.access_key_id,
            "secret_key": self.secret_access_key,
            "security_token": None,
            "session_profile": None,
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "location": self.prefix,
            # NOTE: like the local folder, a save never overwrites: the new file gets a fresh name and
            # the old one is deleted once no row points at it.
            "file_overwrite": False,
            "default_acl": None,
            "max_memory_size": 16 * 1024 * 1024,  # larger reads spool to a temp file, not memory
            "addressing_style": "path" if self.endpoint_url else None,  # MinIO, Ceph, moto: bucket in the path
        }


@dataclass(frozen=True)
class Config:
    mode: str
    debug: bool
    data_dir: Path
    secret_key: str = field(repr=False)
    database: dict = field(repr=False)  # holds the password
    database_url: str = field(repr=False)
    redis_url: str | None = field(repr=False)  # may hold a password
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    bind: str
    signup_open: bool
    worker_name: str
    scheduler_tick_seconds: float
    heartbeat_seconds: float
    worker_timeout_seconds: float
    admin_user: str
    admin_password: str | None = field(repr=False)
    demo: bool
    static_root: Path
    s3: S3Storage | None = None  # None: artifacts in the local folder `storage_dir`
    trusted_proxies: int = 0  # reverse proxies in front that append to X-Forwarded-For (KILN_TRUSTED_PROXIES)
    api_rate_limit: tuple[int, int] = DEFAULT_API_RATE_LIMIT  # API requests per token per window of seconds
    run_disk_quota_bytes: int = 10 * 10**9  # a run's working folder (KILN_RUN_DISK_QUOTA_GB); past it the job is stopped
    run_memory_gb: float = 4.0  # host memory a run may use unless its spec says (KILN_RUN_MEMORY_GB)
    allow_unisolated_code: bool = False  # KILN_ALLOW_UNISOLATED_CODE: code runs on workers whose sandbox failed its check
    bwrap: str = ""  # KILN_BWRAP: bubblewrap to wrap jobs in ("": found on PATH, "none": never)
    # KILN_DISTRIBUTED_HOST_NETWORK: multi-node runs whose workers are on different hosts share the host's
    # network (weaker: their jobs can reach what the host can); off, such runs fail with that reason
    distributed_host_network: bool = False
    worker_cpus: int | None = None  # KILN_WORKER_CPUS: CPU slots this worker offers (None: os.cpu_count())
    worker_memory_gb: float | None = None  # KILN_WORKER_MEMORY_GB: memory runs may use here (None: 90 % of the host's)
    worker_gpus: tuple[int, ...] | None = None  # KILN_WORKER_GPUS: device indices this worker offers (None: all found)
    deleted_retention_days: float = 30.0  # KILN_DELETED_RETENTION_DAYS: how long runs/experiments MLflow deleted stay restorable
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
            "bad_folder": str(self.broker_dir / "bad"),  # unreadable message files, kept for inspection
            "store_processed": False,
            # NOTE: an idle consumer lists the queue folder this often (kombu's default is 1 s): a
            # submitted run reaches a warm worker in ~0.2 s instead of ~0.7 s, for a cheap listdir.
            "polling_interval": 0.1,
        }

    @property
    def default_storage(self) -> dict:
        """Django's STORAGES["default"]: the S3 bucket when KILN_S3_BUCKET is set, else KILN_DATA_DIR/artifacts."""
        if self.s3 is not None:
            return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": self.s3.storage_options}
        return {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(self.storage_dir)}}

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
        signup_open=_bool(env, "KILN_SIGNUP_OPEN", default=not production),  # a public server starts closed
        worker_name=env.get("KILN_WORKER_NAME") or os.uname().nodename,
        scheduler_tick_seconds=_positive_float(env, "KILN_SCHEDULER_TICK", default=2.0),
        heartbeat_seconds=_positive_float(env, "KILN_HEARTBEAT_SECONDS", default=5.0),
        worker_timeout_seconds=_positive_float(env, "KILN_WORKER_TIMEOUT", default=30.0),
        admin_user=env.get("KILN_ADMIN_USER") or "admin",
        admin_password=env.get("KILN_ADMIN_PASSWORD") or None,
        demo=_bool(env, "KILN_DEMO", default=not production),
        static_root=Path(env.get("KILN_STATIC_ROOT") or data_dir / "static").resolve(),
        s3=_s3(env),
        trusted_proxies=_count(env, "KILN_TRUSTED_PROXIES", default=0),
        api_rate_limit=_rate(env, "KILN_API_RATE_LIMIT", default=DEFAULT_API_RATE_LIMIT),
        run_disk_quota_bytes=int(_positive_float(env, "KILN_RUN_DISK_QUOTA_GB", default=10.0) * 10**9),
        run_memory_gb=_positive_float(env, "KILN_RUN_MEMORY_GB", default=4.0),
        allow_unisolated_code=_bool(env, "KILN_ALLOW_UNISOLATED_CODE", default=False),
        bwrap=_bwrap(env.get("KILN_BWRAP", "").strip()),
        distributed_host_network=_bool(env, "KILN_DISTRIBUTED_HOST_NETWORK", default=False),
        worker_cpus=_worker_cpus(env),
        worker_memory_gb=_worker_memory_gb(env),
        worker_gpus=_worker_gpus(env),
        deleted_retention_days=_days(env, "KILN_DELETED_RETENTION_DAYS", default=30.0),
    )


def _bwrap(value: str) -> str:
    if value in ("", "none") or (os.path.isfile(value) and os.access(value, os.X_OK)):
        return value
    raise ConfigError(f"KILN_BWRAP must be the path of the bwrap program or 'none', got {value!r}")


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
    else:
        # NOTE: a database behind a dead link must fail fast rather than hang a worker's loop for
        # minutes: libpq's connect timeout and TCP keepalives (options in the URL's query win).
        options = parsed.setdefault("OPTIONS", {})
        for name, value in (("connect_timeout", 10), ("keepalives", 1), ("keepalives_idle", 30),
                            ("keepalives_interval", 10), ("keepalives_count", 3)):
            options.setdefault(name, value)
    return dict(parsed)


_S3_VARIABLES = (
    "KILN_S3_ENDPOINT_URL", "KILN_S3_REGION", "KILN_S3_PREFIX", "KILN_S3_ACCESS_KEY_ID", "KILN_S3_SECRET_ACCESS_KEY",
)
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")


def _s3(env: Mapping[str, str]) -> S3Storage | None:
    """The bucket named by KILN_S3_BUCKET, or None; messages name variables, never a secret's value."""
    bucket = env.get("KILN_S3_BUCKET", "").strip()
    if not bucket:
        stray = [name for name in _S3_VARIABLES if env.get(name, "").strip()]
        if stray:
            raise ConfigError(f"{stray[0]} is set but KILN_S3_BUCKET is not; set the bucket or unset {stray[0]}")
        return None
    if not _BUCKET_NAME.fullmatch(bucket):
        raise ConfigError(f"KILN_S3_BUCKET must be a bucket name (letters, digits, '.', '-', '_'), got {bucket!r}")
    key_id = env.get("KILN_S3_ACCESS_KEY_ID", "").strip()
    secret = env.get("KILN_S3_SECRET_ACCESS_KEY", "").strip()
    for name, value in (("KILN_S3_ACCESS_KEY_ID", key_id), ("KILN_S3_SECRET_ACCESS_KEY", secret)):
        if not value:
            raise ConfigError(f"{name} is required when KILN_S3_BUCKET is set")
    endpoint = env.get("KILN_S3_ENDPOINT_URL", "").strip() or None
    if endpoint is not None and not _http_url(endpoint):
        raise ConfigError(f"KILN_S3_ENDPOINT_URL must look like https://s3.example.com:9000, got {endpoint!r}")
    prefix = env.get("KILN_S3_PREFIX", "").strip().strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ConfigError(f"KILN_S3_PREFIX must be a plain folder path like kiln/artifacts, got {prefix!r}")
    region = env.get("KILN_S3_REGION", "").strip() or "us-east-1"
    return S3Storage(bucket=bucket, access_key_id=key_id, secret_access_key=secret,
                     endpoint_url=endpoint, region=region, prefix=prefix)


def _http_url(url: str) -> bool:
    parsed = urlparse(url)
    try:
        parsed.port  # noqa: B018 -- raises ValueError on a non-numeric port
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


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


def _days(env: Mapping[str, str], name: str, *, default: float) -> float:
    """A positive, finite number of days, at most 100 years (a timedelta holds it)."""
    value = _positive_float(env, name, default=default)
    if not value <= 36500:
        raise ConfigError(f"{name} must be a number of days from above 0 to 36500, got {env.get(name)!r}")
    return value


def _rate(env: Mapping[str, str], name: str, *, default: tuple[int, int]) -> tuple[int, int]:
    """REQUESTS/SECONDS, e.g. 6000/60."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    requests_text, _, seconds_text = raw.partition("/")
    requests, seconds = parse_int(requests_text, low=1), parse_int(seconds_text, low=1, high=86400)
    if requests is None or seconds is None:
        raise ConfigError(f"{name} must look like REQUESTS/SECONDS, e.g. 6000/60, got {raw!r}")
    return requests, seconds


def _count(env: Mapping[str, str], name: str, *, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    count = parse_int(raw, low=0, high=10)
    if count is None:
        raise ConfigError(f"{name} must be a whole number from 0 to 10, got {raw!r}")
    return count


def _worker_cpus(env: Mapping[str, str]) -> int | None:
    raw = (env.get("KILN_WORKER_CPUS") or "").strip()
    if not raw:
        return None
    cpus = parse_int(raw, low=1, high=MAX_WORKER_CPUS)
    if cpus is None:
        raise ConfigError(f"KILN_WORKER_CPUS must be a whole number from 1 to {MAX_WORKER_CPUS}, got {raw!r}")
    return cpus


def _worker_gpus(env: Mapping[str, str]) -> tuple[int, ...] | None:
    """KILN_WORKER_GPUS: "0,2" offers GPUs 0 and 2 only; "" or unset offers every GPU found; "none" offers none."""
    raw = (env.get("KILN_WORKER_GPUS") or "").strip()
    if not raw:
        return None
    if raw.lower() == "none":
        return ()
    indices = [parse_int(part.strip(), low=0, high=MAX_WORKER_GPUS - 1) for part in raw.split(",")]
    if any(i is None for i in indices) or len(set(indices)) != len(indices):
        raise ConfigError("KILN_WORKER_GPUS must be distinct GPU indices separated by commas (e.g. 0,1,3), "
                          f"or none, got {raw!r}")
    return tuple(i for i in indices if i is not None)


def _worker_memory_gb(env: Mapping[str, str]) -> float | None:
    raw = (env.get("KILN_WORKER_MEMORY_GB") or "").strip()
    if not raw:
        return None
    try:
        memory_gb = float(raw)
    except ValueError:
        memory_gb = math.nan
    if not 0 < memory_gb <= MAX_WORKER_MEMORY_GB:  # NaN and inf fail this too
        raise ConfigError(
            f"KILN_WORKER_MEMORY_GB must be a number of GB above 0 and at most {MAX_WORKER_MEMORY_GB:g}, got {raw!r}"
        )
    return memory_gb


def _list(env: Mapping[str, str], name: str, *, default: str) -> list[str]:
    return [item.strip() for item in env.get(name, default).split(",") if item.strip()]
