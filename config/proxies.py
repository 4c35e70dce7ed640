"""Who called us, behind N trusted proxies (each appending the address it got the request from to
X-Forwarded-For): the N-th address from the right. With no proxy, the peer; an X-Forwarded-For any client
can write is never believed beyond the proxies we run."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def forwarded_address(remote_addr: str, forwarded_for: str, *, hops: int) -> str:
    """hops=0: the peer (REMOTE_ADDR). hops=N: the N-th address from the right of X-Forwarded-For; fewer
    addresses than hops: "" (unknown)."""
    if hops <= 0:
        return remote_addr or ""
    chain = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()]
    return chain[-hops] if len(chain) >= hops else ""


def client_ip(request: HttpRequest) -> str | None:
    """The caller of a web request, by TRUST_FORWARDED_FOR (the admin's login throttle keys on it); None
    when the request carries no address at all (an in-process request)."""
    peer = request.META.get("REMOTE_ADDR", "")
    found = forwarded_address(
        peer, request.META.get("HTTP_X_FORWARDED_FOR", ""), hops=int(settings.TRUST_FORWARDED_FOR)
    )
    return found or peer or None
