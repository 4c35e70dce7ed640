"""The local world the bot runs in without Telegram or Google: not part of the product.

- `sandbox.telegram`: a Telegram Bot API emulator (real aiogram clients talk to it over HTTP), with
  a web chat page to talk to the bot in a browser;
- `sandbox.google`: a stand-in of Google's generative APIs that the real google-genai SDK talks to;
- `sandbox.yookassa`: a fake YooKassa API v3 (payments, refunds, webhooks) that the real `yookassa` SDK talks to.

None imports Django: they are plain asyncio/aiohttp servers, used by the tests (the first two also by the
benchmarks and by `make run` without a BOT_TOKEN).
"""
