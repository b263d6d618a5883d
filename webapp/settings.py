"""Django settings. Every value comes from `webapp.config.load_config()`; none is read here."""

from __future__ import annotations

from pathlib import Path

from webapp.config import PRODUCTION, load_config

CONFIG = load_config()
BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = [*CONFIG.allowed_hosts, "testserver"] if CONFIG.mode != PRODUCTION else CONFIG.allowed_hosts
CSRF_TRUSTED_ORIGINS = CONFIG.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "webapp.accounts",
    "webapp.cluster",
    "webapp.projects",
    "webapp.experiments",
    "webapp.dashboards",
    "webapp.mlflow",
]

MIDDLEWARE = [
    "webapp.compression.GzipJson",  # first: it compresses the answer every other layer has finished
    "webapp.csp.ContentSecurityPolicy",
    "webapp.api.middleware.ApiErrorsAsJson",  # outside the rest: it reshapes any error answer under /api/
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # NOTE: the cookie layers, each skipped by an /api/ request signed in by its Authorization header
    # (webapp.api.middleware: no session, CSRF or messages there); every other request passes them all.
    "webapp.api.middleware.Sessions",
    "django.middleware.common.CommonMiddleware",
    "webapp.api.middleware.Csrf",
    "webapp.api.middleware.CookieSignIn",
    "webapp.text_input.RefuseNul",  # after auth: its 400 page shows who is signed in
    "webapp.api.middleware.Messages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.cluster.context_processors.isolation",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = CONFIG.static_root
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": CONFIG.default_storage,  # artifacts, checkpoints and code: a local folder or an S3 bucket
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# NOTE: the embedded mode serves straight from the app folders, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = CONFIG.mode != PRODUCTION
WHITENOISE_AUTOREFRESH = CONFIG.mode != PRODUCTION
if CONFIG.mode != PRODUCTION:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if CONFIG.mode == PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

KILN_SIGNUP_OPEN = CONFIG.signup_open
KILN_TRUSTED_PROXIES = CONFIG.trusted_proxies  # how client addresses are read (webapp.ratelimit)
KILN_API_RATE_LIMIT = CONFIG.api_rate_limit  # API requests per token per window of seconds (webapp.api.ratelimit)

# Shared between processes (rate limits, live-update cursors): Redis when configured.
CACHES = {
    "default": (
        # Redis away is a miss, never an error (webapp.cache); short timeouts so an unreachable host costs little.
        {"BACKEND": "webapp.cache.ResilientRedisCache", "LOCATION": CONFIG.redis_url,
         "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 2.0}}
        if CONFIG.redis_url
        else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(CONFIG.data_dir / "cache")}
    )
}

CELERY_BROKER_URL = CONFIG.broker_url
CELERY_BROKER_TRANSPORT_OPTIONS = CONFIG.broker_transport_options

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
