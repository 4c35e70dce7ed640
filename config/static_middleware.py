"""WhiteNoise for an ASGI web process.

WhiteNoise 6 answers with a `FileResponse` over a synchronous file; Django's ASGI handler can only
consume that by reading the whole file in a thread, and warns on every static file ("StreamingHttpResponse
must consume synchronous iterators in order to serve them asynchronously"). Here, under ASGI, the
response streams the same file through an asynchronous iterator (each block read in a worker thread),
so nothing is buffered and nothing warns. Under WSGI the response is WhiteNoise's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from whitenoise.middleware import WhiteNoiseMiddleware as _WhiteNoiseMiddleware

BLOCK_SIZE = 64 * 1024


async def _read_blocks(filelike: Any, block_size: int = BLOCK_SIZE) -> AsyncIterator[bytes]:
    read = sync_to_async(filelike.read, thread_sensitive=False)
    while block := await read(block_size):
        yield block


class WhiteNoiseMiddleware(_WhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file, request):
        response = _WhiteNoiseMiddleware.serve(static_file, request)
        filelike = response.file_to_stream
        if isinstance(request, ASGIRequest) and filelike is not None:
            # The file stays in the response's closers (closed when the response is).
            response.streaming_content = _read_blocks(filelike)
        return response
