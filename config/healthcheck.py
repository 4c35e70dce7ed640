"""`python -m config.healthcheck`: exits 0 when this container's web process answers /healthz with 200.

The Docker HEALTHCHECK and docker compose run it inside the web container. Only the standard library
(no Django, no settings: quick, and it works whatever the configuration): it asks
``http://127.0.0.1:$PORT/healthz`` directly (no proxy), with the first host name of ALLOWED_HOSTS as
the Host header, so a web process that answers only its public name still answers the check.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

PATH = "/healthz"
TIMEOUT_SECONDS = 8.0


def host_header(allowed_hosts: str) -> str:
    """The first usable name of ALLOWED_HOSTS ('.example.com' gives example.com), else localhost."""
    for name in allowed_hosts.split(","):
        name = name.strip().lstrip(".")
        if name and "*" not in name:
            return name
    return "localhost"


def check(port: str, allowed_hosts: str, timeout: float = TIMEOUT_SECONDS) -> tuple[bool, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{PATH}", headers={"Host": host_header(allowed_hosts)})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status == 200, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code}: {exc.read(2000).decode(errors='replace')}"
    except OSError as exc:
        return False, f"no answer: {exc}"


def main() -> int:
    healthy, answer = check(os.environ.get("PORT") or "8000", os.environ.get("ALLOWED_HOSTS", ""))
    print(answer)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
