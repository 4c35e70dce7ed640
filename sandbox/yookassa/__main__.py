"""Run the fake YooKassa: ``python -m sandbox.yookassa [--port 8090] [--webhook-url URL] [--shop-id ID]``.

Point the SDK at it: ``Configuration.configure(shop_id, secret_key, api_url="http://127.0.0.1:8090/v3")``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .server import FakeYooKassa


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeYooKassa(
        args.host,
        args.port,
        shop_id=args.shop_id,
        secret_key=args.secret_key,
        webhook_url=args.webhook_url,
        source_ip=args.source_ip,
    )
    await fake.start()
    print(f"fake YooKassa on {fake.base_url}", flush=True)
    print(f"yookassa SDK: Configuration.configure({fake.shop_id!r}, {fake.secret_key!r}, api_url={fake.api_url!r})")
    if args.webhook_url:
        print(f"notifications go to {args.webhook_url} (from {args.source_ip} in X-Forwarded-For)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.yookassa", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--shop-id", default="100500")
    parser.add_argument("--secret-key", default="test_fake_secret_key")
    parser.add_argument("--webhook-url", default=None, help="where to POST notifications")
    parser.add_argument("--source-ip", default="185.71.76.1", help="the address notifications claim to come from")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
