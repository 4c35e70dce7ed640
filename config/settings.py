"""Django settings: everything comes from the environment (or a `.env` file); see `.env.example`.

With no environment at all the project runs on SQLite, an in-memory cache and an in-process task
queue, so that a newcomer needs nothing but Python.
"""

from decimal import Decimal
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def env_or(name: str, default: str) -> str:
    """The variable's value, or `default` when it is unset or empty (as in a copied .env.example)."""
    return env.str(name, default="") or default


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env_or("SECRET_KEY", "insecure-dev-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "botapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database: SQLite file by default, PostgreSQL (psycopg 3) with DATABASE_URL -------------------
DATABASES = {"default": env.db_url_config(env_or("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the writer lock instead of failing at once when the bot and a worker write together.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # A file, not memory, so that worker processes started by the tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, FSM storage, Celery broker, update dedupe --------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: Redis (or RabbitMQ via CELERY_BROKER_URL) in production; SQLite broker by default ----
CELERY_BROKER_URL = env_or("CELERY_BROKER_URL", REDIS_URL or f"sqla+sqlite:///{BASE_DIR / 'celery-broker.sqlite3'}")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Telegram ---------------------------------------------------------------------------------------
BOT_TOKEN = env.str("BOT_TOKEN", default="")
TELEGRAM_API_URL = env_or("TELEGRAM_API_URL", "https://api.telegram.org")
BOT_USERNAME = env.str("BOT_USERNAME", default="")
WEBHOOK_URL = env.str("WEBHOOK_URL", default="")
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
ADMIN_IDS = env.list("ADMIN_IDS", cast=int, default=[])
THROTTLE_RATE = env.float("THROTTLE_RATE", default=0.5)  # seconds between two updates of one user

# --- Google (google-genai) ---------------------------------------------------------------------------
GOOGLE_API_KEY = env.str("GOOGLE_API_KEY", default="")
GOOGLE_GENAI_USE_VERTEXAI = env.bool("GOOGLE_GENAI_USE_VERTEXAI", default=False)
GOOGLE_CLOUD_PROJECT = env.str("GOOGLE_CLOUD_PROJECT", default="")
GOOGLE_CLOUD_LOCATION = env_or("GOOGLE_CLOUD_LOCATION", "us-central1")
GOOGLE_VERTEX_API_KEY = env.str("GOOGLE_VERTEX_API_KEY", default="")
GOOGLE_GEMINI_BASE_URL = env.str("GOOGLE_GEMINI_BASE_URL", default="")
GOOGLE_VERTEX_BASE_URL = env.str("GOOGLE_VERTEX_BASE_URL", default="")
# "demo" draws results locally; "auto" uses Google when credentials exist and the demo otherwise.
GENERATION_PROVIDER_MODE = env_or("GENERATION_PROVIDER_MODE", "auto")

# --- Business rules ----------------------------------------------------------------------------------
MAX_INFLIGHT_PER_USER = env.int("MAX_INFLIGHT_PER_USER", default=3)
IMAGE_TIMEOUT_SECONDS = env.int("IMAGE_TIMEOUT_SECONDS", default=180)
VIDEO_TIMEOUT_SECONDS = env.int("VIDEO_TIMEOUT_SECONDS", default=900)
XP_PER_TOKEN = env.int("XP_PER_TOKEN", default=10)
REFERRAL_FIRST_TOPUP_BONUS = Decimal(env.str("REFERRAL_FIRST_TOPUP_BONUS", default="10"))
REFERRAL_PERCENT = Decimal(env.str("REFERRAL_PERCENT", default="5"))
MAX_INPUT_IMAGE_BYTES = env.int("MAX_INPUT_IMAGE_BYTES", default=10 * 1024 * 1024)

# --- Admin login created by `make run` ---------------------------------------------------------------
ADMIN_USERNAME = env.str("ADMIN_USERNAME", default="")
ADMIN_PASSWORD = env.str("ADMIN_PASSWORD", default="")

# --- Static and media --------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_or("MEDIA_ROOT", str(BASE_DIR / "media")))
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage"
        if AWS_STORAGE_BUCKET_NAME
        else "django.core.files.storage.FileSystemStorage"
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
    AWS_QUERYSTRING_AUTH = True

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", "Русский"), ("en", "English")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "aiogram.event": {"level": "WARNING"}},
}

UNFOLD = {
    "SITE_TITLE": "GenStudio admin",
    "SITE_HEADER": "GenStudio",
    "SITE_SYMBOL": "auto_awesome",
}

# --- Generation queue --------------------------------------------------------------------------------
# A dotted path to `f(request_id)` that hands a queued request to the workers; empty: requests wait
# in "queued" (the recovery sweep dispatches them later).
GENERATION_DISPATCH = env.str("GENERATION_DISPATCH", default="botapp.tasks.dispatch_generation")
