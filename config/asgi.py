import os

from django.core.asgi import get_asgi_application

from config.bodylimit import BodyLimit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Bodies over their path's limit are refused before Django spools them to disk (config/bodylimit.py).
application = BodyLimit(get_asgi_application())

# Load the URLs (and with them the admin, the webhook and aiogram) now, not on the first request:
# the server only starts listening once the process can answer at once.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
