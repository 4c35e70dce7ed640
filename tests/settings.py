"""The test suite's settings: the project's own, with a SECRET_KEY for the run.

With DEBUG off the project refuses a public SECRET_KEY (config/secret_key.py). The key is put in the
environment before the settings load, so that the processes the tests start (Celery workers, the
stack) inherit it too. A SECRET_KEY set by the caller (CI) is kept.
"""

import os
import secrets

from config.secret_key import is_public

if is_public(os.environ.get("SECRET_KEY")):
    os.environ["SECRET_KEY"] = "tests-" + secrets.token_urlsafe(48)

from config.settings import *  # noqa: F403
