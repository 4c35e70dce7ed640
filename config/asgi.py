import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

# Load the URLs (and with them the admin, the webhook and aiogram) now, not on the first request:
# the server only starts listening once the process can answer at once.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
