"""Run the fake Google server: `python -m sandbox.google --port 8089 --op-seconds 60`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from .server import FakeGoogleServer, Scenario


async def _serve(args: argparse.Namespace) -> None:
    default = Scenario(
        op_seconds=args.op_seconds,
        op_polls=args.op_polls if args.op_polls is not None else (0 if args.op_seconds else None),
        latency=args.latency or None,
    )
    server = FakeGoogleServer(args.host, args.port, default=default, record=not args.no_record)
    await server.start()
    print(f"fake Google server on {server.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--op-seconds", type=float, default=None, help="a video operation takes this long")
    parser.add_argument("--op-polls", type=int, default=None, help="a video operation is done at the N-th poll")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--no-record", action="store_true", help="do not keep request records")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
