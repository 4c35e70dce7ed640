"""Django settings: everything comes from the environment (or a `.env` file); see `.env.example`.

With no environment at all the project runs on SQLite, an in-memory cache and an in-process task
queue, so that a newcomer needs nothing but Python.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import StrictEnv, read_env_file
from config.secret_key import DEV_SECRET_KEY, is_public

BASE_DIR = Path(__file__).resolve().parent.parent

# A malformed .env line or a value of the wrong type stops the process with the variable and the
# line named (config/env.py); the environment wins over .env.
env = StrictEnv()
read_env_file(BASE_DIR / ".env")


def env_or(name: str, default: str) -> str:
    """The variable's value, or `default` when it is unset or empty (as in a copied .env.example)."""
    return env.str(name, default="") or default


DEBUG = env.bool("DEBUG", default=False)
# With DEBUG off a public key (unset, empty, a placeholder) refuses to start: every entry point loads
# these settings. `make run` writes a random key into .env for a newcomer (config/secret_key.py).
SECRET_KEY = env.str("SECRET_KEY", default="")
if is_public(SECRET_KEY):
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set (or is a public placeholder, or weak: under 50 characters or fewer than 5 "
            "distinct ones) and DEBUG is off: refusing to start, since anyone could forge sessions and admin "
            "logins with a public key. Set SECRET_KEY in the "
            "environment or .env (python -c 'import secrets; print(secrets.token_urlsafe(50))'); "
            "`make run` writes one into .env for you; for local development only, DEBUG=true also works."
        )
    SECRET_KEY = SECRET_KEY or DEV_SECRET_KEY
# The host names the site answers to: this machine's by default (`make run`); production names its own.
# With DEBUG off "*" is refused: a forged Host header would then reach password-reset links, absolute
# URLs and the caches.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if not DEBUG and ("*" in ALLOWED_HOSTS or any("*" in origin.split("//", 1)[-1][:2] for origin in CSRF_TRUSTED_ORIGINS)):
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS (or CSRF_TRUSTED_ORIGINS) is a wildcard and DEBUG is off: name the site's hosts, "
        "e.g. ALLOWED_HOSTS=bot.example.com and CSRF_TRUSTED_ORIGINS=https://bot.example.com."
    )

# TLS and cookies. Behind a proxy that ends TLS (Railway, a compose proxy) set TRUST_FORWARDED_PROTO=true:
# its X-Forwarded-Proto then says whether the request came over HTTPS, and plain HTTP is redirected to
# HTTPS (never the health check, which the platform asks over HTTP). With DEBUG off the session and CSRF
# cookies are Secure (`make run` serves http://127.0.0.1, which browsers treat as secure) and HSTS is sent.
TRUST_FORWARDED_PROTO = env.bool("TRUST_FORWARDED_PROTO", default=False)
if TRUST_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=TRUST_FORWARDED_PROTO and not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^health/$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "botapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise, streaming files asynchronously under ASGI (config/static_middleware.py).
    "config.static_middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # the lockout page for a login refused by the backend below
]

# Admin logins are throttled (django-axes, in the database): after ADMIN_LOGIN_FAILURE_LIMIT wrong
# passwords from one address, or for one username, logins are refused (429) for ADMIN_LOGIN_LOCKOUT_MINUTES.
# TRUST_FORWARDED_FOR=N: N proxies in front of the web process (Railway, a compose proxy), the caller's
# address is the N-th from the right of X-Forwarded-For; 0: the peer's address.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.proxies.client_ip"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # a lockout is lifted by time, or by `manage.py axes_reset_username <name>`
TRUST_FORWARDED_FOR = env.int("TRUST_FORWARDED_FOR", default=0)

ROOT_URLCONF = "config.urls"
# Logging in at /admin/login/ lands on the admin (Django's default is /accounts/profile/, a 404 here).
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"
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
    DATABASES["default"]["TEST"] = {"NAME": env_or("SQLITE_TEST_DB", str(BASE_DIR / "test-db.sqlite3"))}
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

# --- Celery: Redis (or RabbitMQ via CELERY_BROKER_URL) in production; a folder broker by default ---
from kombu import Exchange, Queue  # noqa: E402

# Without REDIS_URL / CELERY_BROKER_URL the queue is kombu's file-system transport: messages are
# files in CELERY_BROKER_FOLDER, so `make run` needs no extra server (one machine only). Countdowns
# and ETAs are kept by the worker, so they work on every transport. Nothing is lost if the broker
# drops a message: the database is the source of truth and the recovery sweep re-dispatches.
CELERY_BROKER_URL = env_or("CELERY_BROKER_URL", REDIS_URL or "filesystem://localhost/")
if CELERY_BROKER_URL.rstrip("/") == "filesystem:":
    # The host means nothing to this transport, but without one kombu warns "No hostname was supplied".
    CELERY_BROKER_URL = "filesystem://localhost/"
CELERY_RESULT_BACKEND = None
# Celery's Django fixup closes the database connection before and after every task, whatever
# CONN_MAX_AGE says, unless a reuse count is set: every task then opened a new PostgreSQL connection
# (a server process forked each time; 13 % of the worker's time submitting 1,000 videos,
# bench/inflight.py). A count no worker reaches turns that off; config/celery.py applies Django's own
# rule at each task's start and end instead (close what is older than CONN_MAX_AGE or unusable).
CELERY_DB_REUSE_MAX = 2**62
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False  # per task: only the idempotent generation tasks ack late
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_DEFAULT_QUEUE = env_or("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = env_or("CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / ".celerybeat-schedule"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_FOLDER = Path(env_or("CELERY_BROKER_FOLDER", str(BASE_DIR / ".celery-broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "polling_interval": 0.2,
    }
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False  # no broadcast mailbox on the folder broker
    for _folder in ("queue", "control"):
        try:
            (CELERY_BROKER_FOLDER / _folder).mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only checkout: the worker reports the broker error when it starts
            pass
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Countdowns are short (polls and delivery retries); an unacked message comes back after this.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Three queues, all consumed by every worker (in turn): generations, the periodic ticks and sends to
# Telegram, so that a backlog of results waiting for Telegram's rate limit delays neither the
# poller nor new requests.
CELERY_TICK_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-ticks"
CELERY_SEND_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-send"
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, CELERY_TICK_QUEUE, CELERY_SEND_QUEUE)
)
CELERY_TASK_DEFAULT_EXCHANGE = CELERY_TASK_DEFAULT_ROUTING_KEY = CELERY_TASK_DEFAULT_QUEUE
CELERY_TASK_ROUTES = {
    "botapp.tasks.poll_generations": {"queue": CELERY_TICK_QUEUE},
    "botapp.tasks.sweep_generations": {"queue": CELERY_TICK_QUEUE},
    "botapp.tasks.deliver_generation": {"queue": CELERY_SEND_QUEUE},
    "botapp.tasks.notify_failure": {"queue": CELERY_SEND_QUEUE},
    "botapp.tasks.check_failure_rate": {"queue": CELERY_TICK_QUEUE},
    "botapp.tasks.check_video_queue": {"queue": CELERY_TICK_QUEUE},
    "botapp.tasks.rollup_dashboard": {"queue": CELERY_TICK_QUEUE},
    "botapp.tasks.send_operator_alert": {"queue": CELERY_SEND_QUEUE},
    "botapp.tasks.send_support_message": {"queue": CELERY_SEND_QUEUE},
    "botapp.tasks.run_broadcast": {"queue": CELERY_SEND_QUEUE},
    "botapp.tasks.tick_broadcasts": {"queue": CELERY_TICK_QUEUE},
    "botapp.tasks.notify_payment_refund": {"queue": CELERY_SEND_QUEUE},
    "botapp.tasks.reconcile_stars": {"queue": CELERY_TICK_QUEUE},
    "botapp.tasks.reconcile_card": {"queue": CELERY_TICK_QUEUE},
}
# The periodic tasks (run `celery -A config beat`, or `worker -B` on one machine).
GENERATION_POLL_TICK_SECONDS = env.float("GENERATION_POLL_TICK_SECONDS", default=2.0)
GENERATION_SWEEP_SECONDS = env.float("GENERATION_SWEEP_SECONDS", default=60.0)
# Operator alerts (botapp.services.alerts) to ADMIN_IDS: the generation failure rate is checked every
# ALERT_FAILURE_CHECK_SECONDS over the last ALERT_FAILURE_WINDOW_SECONDS; at ALERT_FAILURE_PERCENT
# failed of the finished (succeeded + failed) requests, with at least ALERT_FAILURE_MIN_REQUESTS of
# them, the operators are alerted, at most once per window. The same alert is not repeated within
# ALERT_COOLDOWN_SECONDS (shared through the cache: Redis with REDIS_URL).
ALERT_FAILURE_CHECK_SECONDS = env.float("ALERT_FAILURE_CHECK_SECONDS", default=300.0)
ALERT_FAILURE_WINDOW_SECONDS = env.float("ALERT_FAILURE_WINDOW_SECONDS", default=900.0)
ALERT_FAILURE_PERCENT = env.float("ALERT_FAILURE_PERCENT", default=30.0)
ALERT_FAILURE_MIN_REQUESTS = env.int("ALERT_FAILURE_MIN_REQUESTS", default=10)
ALERT_COOLDOWN_SECONDS = env.float("ALERT_COOLDOWN_SECONDS", default=900.0)
# Every ALERT_QUEUE_CHECK_SECONDS: running generations due (a video poll, a retry) for more than
# ALERT_QUEUE_STUCK_MINUTES without being polled -> one alert per incident (the poller is not running).
ALERT_QUEUE_CHECK_SECONDS = env.float("ALERT_QUEUE_CHECK_SECONDS", default=60.0)
ALERT_QUEUE_STUCK_MINUTES = env.float("ALERT_QUEUE_STUCK_MINUTES", default=10.0)
# At most this many alerts a minute (all kinds, all processes; 0: no cap): the rest are only logged, and
# one summary says how many were suppressed once the storm is over.
ALERT_MAX_PER_MINUTE = env.int("ALERT_MAX_PER_MINUTE", default=10)
# The admin dashboard's daily rollups (botapp.services.rollups): rebuilt this often.
DASHBOARD_ROLLUP_SECONDS = env.float("DASHBOARD_ROLLUP_SECONDS", default=600.0)
# Broadcasts (botapp.services.broadcasts): messages per second of a broadcast (BROADCAST_RATE, within
# TELEGRAM_GLOBAL_RATE, whose budget it shares with results), or of a paid one (allow_paid_broadcast:
# up to 1000/s, over Telegram's free limit, 0.1 Star a message); BROADCAST_THREADS concurrent sends per
# runner; beat every BROADCAST_TICK_SECONDS starts due scheduled broadcasts and hands a broadcast whose
# runner stopped renewing its BROADCAST_LEASE_SECONDS lease (a killed worker) to a new runner.
BROADCAST_RATE = env.float("BROADCAST_RATE", default=25.0)
BROADCAST_PAID_RATE = env.float("BROADCAST_PAID_RATE", default=1000.0)
BROADCAST_THREADS = env.int("BROADCAST_THREADS", default=8)
BROADCAST_TICK_SECONDS = env.float("BROADCAST_TICK_SECONDS", default=5.0)
BROADCAST_LEASE_SECONDS = env.float("BROADCAST_LEASE_SECONDS", default=30.0)
# The Stars reconciliation (botapp.services.reconcile): every STARS_RECONCILE_SECONDS (a day), the last
# STARS_RECONCILE_DAYS days of Telegram's Stars ledger against our payments.
STARS_RECONCILE_SECONDS = env.float("STARS_RECONCILE_SECONDS", default=86400.0)
STARS_RECONCILE_DAYS = env.int("STARS_RECONCILE_DAYS", default=30)
# The card reconciliation (botapp.services.card_refunds): every CARD_RECONCILE_SECONDS (a day), YooKassa's
# payments and refunds of the last CARD_RECONCILE_DAYS days against ours.
CARD_RECONCILE_SECONDS = env.float("CARD_RECONCILE_SECONDS", default=86400.0)
CARD_RECONCILE_DAYS = env.int("CARD_RECONCILE_DAYS", default=14)
CELERY_BEAT_SCHEDULE = {
    "card-reconcile": {
        "task": "botapp.tasks.reconcile_card",
        "schedule": CARD_RECONCILE_SECONDS,
        "options": {"expires": max(60.0, CARD_RECONCILE_SECONDS / 2)},
    },
    "stars-reconcile": {
        "task": "botapp.tasks.reconcile_stars",
        "schedule": STARS_RECONCILE_SECONDS,
        "options": {"expires": max(60.0, STARS_RECONCILE_SECONDS / 2)},
    },
    "broadcast-tick": {
        "task": "botapp.tasks.tick_broadcasts",
        "schedule": BROADCAST_TICK_SECONDS,
        "options": {"expires": max(1.0, BROADCAST_TICK_SECONDS * 2)},
    },
    "generation-poll": {
        "task": "botapp.tasks.poll_generations",
        "schedule": GENERATION_POLL_TICK_SECONDS,
        "options": {"expires": max(1.0, GENERATION_POLL_TICK_SECONDS * 3)},
    },
    "generation-sweep": {
        "task": "botapp.tasks.sweep_generations",
        "schedule": GENERATION_SWEEP_SECONDS,
        "options": {"expires": max(5.0, GENERATION_SWEEP_SECONDS)},
    },
    "generation-failure-rate": {
        "task": "botapp.tasks.check_failure_rate",
        "schedule": ALERT_FAILURE_CHECK_SECONDS,
        "options": {"expires": max(5.0, ALERT_FAILURE_CHECK_SECONDS)},
    },
    "video-queue-check": {
        "task": "botapp.tasks.check_video_queue",
        "schedule": ALERT_QUEUE_CHECK_SECONDS,
        "options": {"expires": max(5.0, ALERT_QUEUE_CHECK_SECONDS)},
    },
    "dashboard-rollup": {
        "task": "botapp.tasks.rollup_dashboard",
        "schedule": DASHBOARD_ROLLUP_SECONDS,
        "options": {"expires": max(5.0, DASHBOARD_ROLLUP_SECONDS)},
    },
}

# --- Telegram ---------------------------------------------------------------------------------------
BOT_TOKEN = env.str("BOT_TOKEN", default="")
TELEGRAM_API_URL = env_or("TELEGRAM_API_URL", "https://api.telegram.org")
BOT_USERNAME = env.str("BOT_USERNAME", default="")
WEBHOOK_URL = env.str("WEBHOOK_URL", default="")
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
WEBHOOK_SECRET_MIN_LENGTH = 32  # shorter is refused at start (DEBUG off) and by `manage.py setwebhook`
if WEBHOOK_SECRET and len(WEBHOOK_SECRET) < WEBHOOK_SECRET_MIN_LENGTH and not DEBUG:
    raise ImproperlyConfigured(
        f"WEBHOOK_SECRET has {len(WEBHOOK_SECRET)} characters: at least {WEBHOOK_SECRET_MIN_LENGTH} are needed "
        "(anyone who guesses it can post updates as Telegram). For example: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
ADMIN_IDS = env.list("ADMIN_IDS", cast=int, default=[])  # operators' Telegram ids: they get the alerts
# The admin's absolute URL, linked from the operators' /admin in the bot (a URL button when Telegram
# takes the host: not localhost or a loopback address, for which the link is shown as text).
ADMIN_URL = env.str("ADMIN_URL", default="http://127.0.0.1:8000/admin/")
# The @username users are pointed to in /help for support (empty: no support line).
SUPPORT_USERNAME = env.str("SUPPORT_USERNAME", default="").lstrip("@")
# Requests one user may send to the operators through /paysupport per hour (0: no limit).
SUPPORT_REQUESTS_PER_HOUR = env.int("SUPPORT_REQUESTS_PER_HOUR", default=3)
# The "Bank card" payment button. Empty (default): shown when YooKassa is configured (below); false: hidden
# (the YooKassa webhook and the expiry of abandoned card payments keep working); true: shown, and without
# a configured shop it answers that card payments are unavailable.
PAYMENT_CARD_ENABLED = env.bool("PAYMENT_CARD_ENABLED") if env.str("PAYMENT_CARD_ENABLED", default="").strip() else None
# Key prefix of the bot's Redis data (FSM storage, update dedupe), so that two bots can share a Redis.
BOT_REDIS_PREFIX = env_or("BOT_REDIS_PREFIX", "bot")
THROTTLE_RATE = env.float("THROTTLE_RATE", default=0.5)  # seconds between two updates of one user

# --- Card payments: YooKassa (botapp/services/card.py; the webhook is POST /yookassa/webhook/) -------------
# Card payments are on when the shop id and its secret key are set.
YOOKASSA_SHOP_ID = env.str("YOOKASSA_SHOP_ID", default="")
YOOKASSA_SECRET_KEY = env.str("YOOKASSA_SECRET_KEY", default="")
YOOKASSA_API_URL = env_or("YOOKASSA_API_URL", "https://api.yookassa.ru/v3")  # the sandbox's fake in tests
# Where the payment page sends the user back (default: https://t.me/<the bot's username>).
YOOKASSA_RETURN_URL = env.str("YOOKASSA_RETURN_URL", default="")
# Seconds for one YooKassa call (connect and read; the SDK sets none). A create that gets no answer is
# asked once more with the same idempotence key.
YOOKASSA_TIMEOUT_SECONDS = env.float("YOOKASSA_TIMEOUT_SECONDS", default=10.0)
# 54-FZ receipts through YooKassa: each payment carries a receipt (one item: the tokens, VAT code
# YOOKASSA_VAT_CODE, 1 = no VAT) sent to YOOKASSA_RECEIPT_EMAIL (the bot knows no customer's e-mail);
# without that address card payments are refused while receipts are on.
YOOKASSA_RECEIPTS = env.bool("YOOKASSA_RECEIPTS", default=False)
YOOKASSA_RECEIPT_EMAIL = env.str("YOOKASSA_RECEIPT_EMAIL", default="")
YOOKASSA_VAT_CODE = env.int("YOOKASSA_VAT_CODE", default=1)
# Who may call the webhook (comma-separated addresses and networks): by default YooKassa's, as the
# SDK's SecurityHelper lists them (yookassa 3.13.0).
YOOKASSA_TRUSTED_IPS = env.list(
    "YOOKASSA_TRUSTED_IPS",
    default=[
        "77.75.153.0/25",
        "77.75.156.11",
        "77.75.156.35",
        "77.75.154.128/25",
        "185.71.76.0/27",
        "185.71.77.0/27",
        "2a02:5180:0:1509::/64",
        "2a02:5180:0:2655::/64",
        "2a02:5180:0:1533::/64",
        "2a02:5180:0:2669::/64",
    ],
)
# 0: the caller is the peer address (REMOTE_ADDR). N: N reverse proxies in front of the web process each
# append to X-Forwarded-For, and the caller is the N-th address from its right (Railway, nginx: 1).
YOOKASSA_TRUST_FORWARDED_FOR = env.int("YOOKASSA_TRUST_FORWARDED_FOR", default=0)
# YooKassa cancels a card payment left unpaid for about an hour. Beat asks YooKassa, every
# YOOKASSA_EXPIRY_SWEEP_SECONDS, about card payments still pending after YOOKASSA_EXPIRE_AFTER_MINUTES:
# canceled -> cancelled here and its promocode freed; succeeded (the webhook was lost) -> credited.
YOOKASSA_EXPIRE_AFTER_MINUTES = env.float("YOOKASSA_EXPIRE_AFTER_MINUTES", default=65.0)
YOOKASSA_EXPIRY_SWEEP_SECONDS = env.float("YOOKASSA_EXPIRY_SWEEP_SECONDS", default=600.0)
CELERY_BEAT_SCHEDULE["card-payment-expiry"] = {
    "task": "botapp.tasks.expire_card_payments",
    "schedule": YOOKASSA_EXPIRY_SWEEP_SECONDS,
    "options": {"expires": max(5.0, YOOKASSA_EXPIRY_SWEEP_SECONDS)},
}
CELERY_TASK_ROUTES["botapp.tasks.expire_card_payments"] = {"queue": CELERY_TICK_QUEUE}
CELERY_TASK_ROUTES["botapp.tasks.notify_card_payment"] = {"queue": CELERY_SEND_QUEUE}

# --- Star subscriptions (botapp/services/subscriptions.py) --------------------------------------------------
# An active subscription whose renewal has not come SUBSCRIPTION_LAPSE_GRACE_HOURS after its paid period
# lapses (a cancelled one at the end of its period); beat checks every SUBSCRIPTION_LAPSE_CHECK_SECONDS.
SUBSCRIPTION_LAPSE_GRACE_HOURS = env.float("SUBSCRIPTION_LAPSE_GRACE_HOURS", default=24.0)
SUBSCRIPTION_LAPSE_CHECK_SECONDS = env.float("SUBSCRIPTION_LAPSE_CHECK_SECONDS", default=3600.0)
CELERY_BEAT_SCHEDULE["subscription-lapse"] = {
    "task": "botapp.tasks.lapse_subscriptions",
    "schedule": SUBSCRIPTION_LAPSE_CHECK_SECONDS,
    "options": {"expires": max(5.0, SUBSCRIPTION_LAPSE_CHECK_SECONDS)},
}
CELERY_TASK_ROUTES["botapp.tasks.lapse_subscriptions"] = {"queue": CELERY_TICK_QUEUE}
CELERY_TASK_ROUTES["botapp.tasks.notify_subscription_lapsed"] = {"queue": CELERY_SEND_QUEUE}

# --- The models' lifecycle (botapp/services/lifecycle.py) ---------------------------------------------------
# Every LIFECYCLE_CHECK_SECONDS (a day): active models on or past their shutdown date switch to their
# successor; the operators are warned 14 and 3 days before a shutdown.
LIFECYCLE_CHECK_SECONDS = env.float("LIFECYCLE_CHECK_SECONDS", default=86400.0)
CELERY_BEAT_SCHEDULE["model-lifecycle"] = {
    "task": "botapp.tasks.check_model_lifecycle",
    "schedule": LIFECYCLE_CHECK_SECONDS,
    "options": {"expires": max(60.0, LIFECYCLE_CHECK_SECONDS / 2)},
}
CELERY_TASK_ROUTES["botapp.tasks.check_model_lifecycle"] = {"queue": CELERY_TICK_QUEUE}

# --- Google (google-genai) ---------------------------------------------------------------------------
GOOGLE_API_KEY = env.str("GOOGLE_API_KEY", default="")
GOOGLE_GENAI_USE_VERTEXAI = env.bool("GOOGLE_GENAI_USE_VERTEXAI", default=False)
GOOGLE_CLOUD_PROJECT = env.str("GOOGLE_CLOUD_PROJECT", default="")
GOOGLE_CLOUD_LOCATION = env_or("GOOGLE_CLOUD_LOCATION", "us-central1")
GOOGLE_VERTEX_API_KEY = env.str("GOOGLE_VERTEX_API_KEY", default="")
GOOGLE_GEMINI_BASE_URL = env.str("GOOGLE_GEMINI_BASE_URL", default="")
GOOGLE_VERTEX_BASE_URL = env.str("GOOGLE_VERTEX_BASE_URL", default="")
# The service-account JSON for Vertex AI: google-auth reads it from the environment (a value in .env
# is exported there by read_env above); kept here so the configuration lists it.
GOOGLE_APPLICATION_CREDENTIALS = env.str("GOOGLE_APPLICATION_CREDENTIALS", default="")
# "demo" draws results locally; "auto" uses Google when credentials exist and the demo otherwise.
GENERATION_PROVIDER_MODE = env_or("GENERATION_PROVIDER_MODE", "auto")

# --- "Improve my prompt" (botapp/services/prompt_help.py): a Gemini text model rewrites the description -----
PROMPT_IMPROVE_ENABLED = env.bool("PROMPT_IMPROVE_ENABLED", default=True)
# Tokens charged with the generation when its description is a rewrite (0: free); its own ledger row.
PROMPT_IMPROVE_PRICE = env("PROMPT_IMPROVE_PRICE", cast=Decimal, default=Decimal("0"))
# A GA Gemini text model (Nov 2026: gemini-3.5-flash-lite, on the Gemini API and Vertex AI).
PROMPT_IMPROVE_MODEL = env_or("PROMPT_IMPROVE_MODEL", "gemini-3.5-flash-lite")
PROMPT_IMPROVE_PER_HOUR = env.int("PROMPT_IMPROVE_PER_HOUR", default=20)  # rewrites per user and hour (0: no limit)
PROMPT_IMPROVE_TIMEOUT_SECONDS = env.float("PROMPT_IMPROVE_TIMEOUT_SECONDS", default=20.0)

# --- Business rules ----------------------------------------------------------------------------------
MAX_INFLIGHT_PER_USER = env.int("MAX_INFLIGHT_PER_USER", default=3)
IMAGE_TIMEOUT_SECONDS = env.int("IMAGE_TIMEOUT_SECONDS", default=180)
# The queue's estimated wait (botapp/selectors/queue.py): a model's typical duration before it has any
# history, and how many worker processes (each CELERY_WORKER_CONCURRENCY threads) run generations.
QUEUE_DEFAULT_IMAGE_SECONDS = env.int("QUEUE_DEFAULT_IMAGE_SECONDS", default=30)
QUEUE_DEFAULT_VIDEO_SECONDS = env.int("QUEUE_DEFAULT_VIDEO_SECONDS", default=120)
GENERATION_WORKER_PROCESSES = env.int("GENERATION_WORKER_PROCESSES", default=1)
VIDEO_TIMEOUT_SECONDS = env.int("VIDEO_TIMEOUT_SECONDS", default=900)
XP_PER_TOKEN = env.int("XP_PER_TOKEN", default=10)
# Referral rewards (botapp/services/referral.py), made so that farming with sock puppets does not pay:
# REFERRAL_PERCENT % of every top-up of a referral; on their first, REFERRAL_FIRST_TOPUP_BONUS more, only
# for a purchase of at least REFERRAL_FIRST_TOPUP_MIN_TOKENS and at most REFERRAL_FIRST_TOPUP_MAX_SHARE %
# of it; a referrer earns at most REFERRAL_DAILY_CAP tokens in 24 hours (0: no cap).
# Tokens spent before a refund are a loss recorded with it (never a debt); the payer is banned at this many
# such refunds (botapp.services.refunds.flag_spent_refund; 0: never).
REFUND_SHORTFALL_BAN_AFTER = env.int("REFUND_SHORTFALL_BAN_AFTER", default=2)
REFERRAL_FIRST_TOPUP_BONUS = env("REFERRAL_FIRST_TOPUP_BONUS", cast=Decimal, default=Decimal("10"))
REFERRAL_PERCENT = env("REFERRAL_PERCENT", cast=Decimal, default=Decimal("5"))
REFERRAL_FIRST_TOPUP_MIN_TOKENS = env("REFERRAL_FIRST_TOPUP_MIN_TOKENS", cast=Decimal, default=Decimal("100"))
REFERRAL_FIRST_TOPUP_MAX_SHARE = env("REFERRAL_FIRST_TOPUP_MAX_SHARE", cast=Decimal, default=Decimal("10"))
REFERRAL_DAILY_CAP = env("REFERRAL_DAILY_CAP", cast=Decimal, default=Decimal("100"))
MAX_INPUT_IMAGE_BYTES = env.int("MAX_INPUT_IMAGE_BYTES", default=10 * 1024 * 1024)
# The admin dashboard's money (botapp/selectors/dashboard.py): roubles one Telegram Star brings the
# operator, and roubles per US dollar (the models' provider costs are in dollars).
STARS_RUB_RATE = env("STARS_RUB_RATE", cast=Decimal, default=Decimal("1.20"))
USD_RUB_RATE = env("USD_RUB_RATE", cast=Decimal, default=Decimal("80"))

# --- The web process (`make run` / `manage.py runstack`; the Procfile passes $PORT to uvicorn) -----------
PORT = env.int("PORT", default=8000)
# Without BOT_TOKEN, `make run` starts the sandbox here: a local Telegram (the Bot API emulator of
# sandbox/telegram) with a web chat page, which the bot, the workers and the admin talk to.
SANDBOX_HOST = env_or("SANDBOX_HOST", "127.0.0.1")
SANDBOX_PORT = env.int("SANDBOX_PORT", default=8081)
# The sandbox refuses to run against a database on another machine (its "Pay" mints real deposits there).
SANDBOX_ALLOW_REMOTE_DATABASE = env.bool("SANDBOX_ALLOW_REMOTE_DATABASE", default=False)
# Request bodies over these sizes are refused with 413 before Django reads them (config/bodylimit.py).
BODY_LIMIT_WEBHOOK_BYTES = env.int("BODY_LIMIT_WEBHOOK_BYTES", default=1024 * 1024)
BODY_LIMIT_ADMIN_BYTES = env.int("BODY_LIMIT_ADMIN_BYTES", default=12 * 1024 * 1024)
BODY_LIMIT_BYTES = env.int("BODY_LIMIT_BYTES", default=64 * 1024)

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

# The admin's language (the bot speaks each user's own language from botapp/locales).
LANGUAGE_CODE = env_or("ADMIN_LANGUAGE", "en")
LANGUAGES = [("ru", "Русский"), ("en", "English")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Django's full set, in the admin's password forms and in `ensure_admin`.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Log lines: "plain" text, or "json": one JSON object per line (time, level, logger, message, exc_info)
# for a log collector; both redacted by the same filter.
LOG_FORMAT = env_or("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "botapp.jsonlog.RedactingJsonFormatter"},
    },
    # Every handler redacts secrets (bot token, keys, passwords) from messages and tracebacks.
    "filters": {"redact": {"()": "botapp.redaction.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        name: {"level": "WARNING"}
        # Quiet per-message chatter: every 2 s poller tick would otherwise log three lines.
        # httpx2: the HTTP client of google-genai (one INFO line per request: per poll of a video);
        # axes: a line per login (its lockouts are warnings, and stay)
        for name in (
            "httpx",
            "httpx2",
            "aiogram.event",
            "celery.app.trace",
            "celery.worker.strategy",
            "celery.beat",
            "axes",
        )
    },
}
if LOG_FORMAT == "json":
    # uvicorn's own lines (start-up, errors, access log) through the same JSON handler.
    LOGGING["loggers"].update(
        {name: {"handlers": ["console"], "level": "INFO", "propagate": False} for name in ("uvicorn", "uvicorn.access")}
    )

# --- Error reporting (optional): Sentry, when SENTRY_DSN is set (config/sentry.py) --------------------
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="")  # e.g. production, staging
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)  # 0: errors only
if not 0.0 <= SENTRY_TRACES_SAMPLE_RATE <= 1.0:
    raise ImproperlyConfigured(f"SENTRY_TRACES_SAMPLE_RATE must be between 0 and 1, not {SENTRY_TRACES_SAMPLE_RATE}")
if SENTRY_DSN:
    from config.sentry import init_sentry

    init_sentry(SENTRY_DSN, environment=SENTRY_ENVIRONMENT, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)

UNFOLD = {
    "SITE_TITLE": "botapp.admin.navigation.site_title",  # "GenStudio admin", in the admin's language
    "SITE_HEADER": "GenStudio",
    "SITE_SYMBOL": "auto_awesome",
    # The admin's landing page: the operator's dashboard (botapp/admin/dashboard.py).
    "DASHBOARD_CALLBACK": "botapp.admin.dashboard.dashboard_callback",
    # The sidebar reads like the cockpit: dashboard, users & support, money, catalogue, generations,
    # broadcasts, administration; an item shows only to staff who may view it (botapp/admin/navigation.py).
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "botapp.admin.navigation.sidebar",
    },
}

# --- Generation queue --------------------------------------------------------------------------------
# A dotted path to `f(request_id)` that hands a queued request to the workers; empty: requests wait
# in "queued" (the recovery sweep dispatches them later).
GENERATION_DISPATCH = env.str("GENERATION_DISPATCH", default="botapp.tasks.dispatch_generation")

# --- Generation workers and delivery (botapp.engine, botapp.telegram) -------------------------------
# One worker process runs many generations at once: a thread pool (image calls wait on the network),
# and videos never hold a thread while Google works: a periodic poller checks every due operation.
CELERY_WORKER_POOL = env_or("CELERY_WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=16)
# Seconds for one Google HTTP call (an image generation) and for downloading a finished video.
GOOGLE_HTTP_TIMEOUT_SECONDS = env.float("GOOGLE_HTTP_TIMEOUT_SECONDS", default=120.0)
GOOGLE_DOWNLOAD_TIMEOUT_SECONDS = env.float("GOOGLE_DOWNLOAD_TIMEOUT_SECONDS", default=300.0)
# The offline demo provider is for development and the sandbox only. Default: allowed unless the bot
# talks to the real Telegram (a token and api.telegram.org) with DEBUG off; then a request that would
# need the demo (no Google credentials) fails with a refund instead of selling a demo picture.
GENERATION_ALLOW_DEMO = env.bool(
    "GENERATION_ALLOW_DEMO",
    default=DEBUG or not BOT_TOKEN or "api.telegram.org" not in TELEGRAM_API_URL,
)
DEMO_VIDEO_SECONDS = env.float("DEMO_VIDEO_SECONDS", default=8.0)  # how long a demo "video operation" runs
# Video polling: first poll after VIDEO_FIRST_POLL_SECONDS, then every VIDEO_POLL_FRACTION of the
# operation's age, kept between VIDEO_POLL_MIN_SECONDS and VIDEO_POLL_MAX_SECONDS.
VIDEO_FIRST_POLL_SECONDS = env.float("VIDEO_FIRST_POLL_SECONDS", default=10.0)
VIDEO_POLL_MIN_SECONDS = env.float("VIDEO_POLL_MIN_SECONDS", default=5.0)
VIDEO_POLL_MAX_SECONDS = env.float("VIDEO_POLL_MAX_SECONDS", default=15.0)
VIDEO_POLL_FRACTION = env.float("VIDEO_POLL_FRACTION", default=0.1)
# ... and every VIDEO_POLL_DENSE_SECONDS (0: never) around the age at which the last
# VIDEO_POLL_LEARN_SAMPLES operations of the same model and parameters finished (with at least
# VIDEO_POLL_LEARN_MIN of them seen by this worker), for at most VIDEO_POLL_DENSE_SPAN_SECONDS.
VIDEO_POLL_DENSE_SECONDS = env.float("VIDEO_POLL_DENSE_SECONDS", default=2.0)
VIDEO_POLL_DENSE_SPAN_SECONDS = env.float("VIDEO_POLL_DENSE_SPAN_SECONDS", default=30.0)
VIDEO_POLL_LEARN_SAMPLES = env.int("VIDEO_POLL_LEARN_SAMPLES", default=50)
VIDEO_POLL_LEARN_MIN = env.int("VIDEO_POLL_LEARN_MIN", default=5)
GENERATION_POLL_BATCH = env.int("GENERATION_POLL_BATCH", default=500)  # operations claimed per tick
GENERATION_POLL_THREADS = env.int("GENERATION_POLL_THREADS", default=32)  # concurrent polls per process
GENERATION_FINISH_THREADS = env.int("GENERATION_FINISH_THREADS", default=8)  # store + mark finished videos
# Kept-alive connections to Google per process: at least the poller's threads plus the worker's.
GOOGLE_HTTP_POOL_SIZE = env.int("GOOGLE_HTTP_POOL_SIZE", default=64)
# Retries of rate limits (429) and transient errors (5xx, network): exponential backoff from BASE
# to MAX seconds (or Google's retry delay), at most MAX_ATTEMPTS submissions, within the deadline.
GENERATION_RETRY_BASE_SECONDS = env.float("GENERATION_RETRY_BASE_SECONDS", default=2.0)
GENERATION_RETRY_MAX_SECONDS = env.float("GENERATION_RETRY_MAX_SECONDS", default=60.0)
GENERATION_MAX_ATTEMPTS = env.int("GENERATION_MAX_ATTEMPTS", default=6)
# How long a worker's claim on a running request lasts before another may take over (0: one Google
# call + one Telegram download + 30 s). A worker killed mid-step is resumed after this.
GENERATION_LEASE_SECONDS = env.float("GENERATION_LEASE_SECONDS", default=0.0)
# The recovery sweep: a queued request not picked up after this long is dispatched again; a result
# that could not be delivered for this long after it was made is refunded.
GENERATION_REDISPATCH_AFTER_SECONDS = env.float("GENERATION_REDISPATCH_AFTER_SECONDS", default=120.0)
GENERATION_DELIVERY_GRACE_SECONDS = env.float("GENERATION_DELIVERY_GRACE_SECONDS", default=3600.0)
GENERATION_STORAGE_PREFIX = env_or("GENERATION_STORAGE_PREFIX", "generations")
# A video over the upload limit is re-encoded to fit; if it cannot be, the user gets a link (remote
# storage such as S3: a signed URL valid this long) or, with local storage, a refund.
GENERATION_LINK_TTL_SECONDS = env.int("GENERATION_LINK_TTL_SECONDS", default=7 * 24 * 3600)

# Telegram sending limits (botapp.telegram.sender; shared through Redis when REDIS_URL is set).
TELEGRAM_GLOBAL_RATE = env.float("TELEGRAM_GLOBAL_RATE", default=25.0)  # messages/s overall (Telegram: ~30)
TELEGRAM_GLOBAL_BURST = env.int("TELEGRAM_GLOBAL_BURST", default=5)
TELEGRAM_CHAT_RATE = env.float("TELEGRAM_CHAT_RATE", default=1.0)  # messages/s in one chat (Telegram: ~1)
TELEGRAM_CHAT_BURST = env.int("TELEGRAM_CHAT_BURST", default=3)
TELEGRAM_AUX_RATE = env.float("TELEGRAM_AUX_RATE", default=10.0)  # chat actions and status edits, best effort
TELEGRAM_MAX_WAIT_SECONDS = env.float("TELEGRAM_MAX_WAIT_SECONDS", default=10.0)  # longer: reschedule the task
TELEGRAM_REQUEST_TIMEOUT_SECONDS = env.int("TELEGRAM_REQUEST_TIMEOUT_SECONDS", default=60)
TELEGRAM_UPLOAD_TIMEOUT_SECONDS = env.int("TELEGRAM_UPLOAD_TIMEOUT_SECONDS", default=300)
# 50 MB through the public Bot API; a local Bot API server accepts 2000 MB.
TELEGRAM_UPLOAD_LIMIT_BYTES = env.int("TELEGRAM_UPLOAD_LIMIT_BYTES", default=50 * 1024 * 1024)
TELEGRAM_PHOTO_LIMIT_BYTES = env.int("TELEGRAM_PHOTO_LIMIT_BYTES", default=10 * 1024 * 1024)
TELEGRAM_DOWNLOAD_LIMIT_BYTES = env.int("TELEGRAM_DOWNLOAD_LIMIT_BYTES", default=20 * 1024 * 1024)
