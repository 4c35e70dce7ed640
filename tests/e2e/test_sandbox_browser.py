"""The newcomer's first impression, in a real browser: `make run` without a token, then the printed chat
URL. Every process is real: the sandbox (Bot API emulator + web chat), the bot polling it, the Celery
worker with the demo provider, the admin; chromium clicks through the page as a person would.

The screenshots go to a temporary folder, or to SCREENSHOTS_DIR (`SCREENSHOTS_DIR=docs` refreshes the
README's pictures).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, skip_reason
from tests.ops.test_run import ctrl_c_stops_everything, run_stack, sandbox_env, wait_running
from tests.ops.test_startup import free_port

ROOT = Path(__file__).resolve().parents[2]
WAIT = 20_000  # ms: the first generation includes the worker picking it up
SHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "sandbox-screenshots")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]


@pytest.fixture(scope="module")
def chat_url(tmp_path_factory) -> Iterator[str]:
    """`make run` with no BOT_TOKEN and no Google credentials, on free ports and a fresh database."""
    folder = tmp_path_factory.mktemp("make-run")
    web, sandbox = free_port(), free_port()
    env = sandbox_env(folder, web=web, sandbox=sandbox, ADMIN_PASSWORD="browser-test-password", THROTTLE_RATE="0")
    log = folder / "run.log"
    make = run_stack(env, log, ["make", "--no-print-directory", "run"])
    try:
        output = wait_running(make, log)
        yield re.search(r"Chat:\s+(http://\S+)", output).group(1)
    finally:
        ctrl_c_stops_everything(make, log)  # make run's whole process tree stops on Ctrl+C


class Chat:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def as_user(self, user_id: int) -> None:
        self.page.click(f"[data-testid=user-option][data-user-id='{user_id}']")
        self.page.wait_for_selector(f"[data-testid=user-option][data-user-id='{user_id}'].active", timeout=WAIT)

    def send(self, text: str) -> None:
        self.page.fill("[data-testid=message-input]", text)
        self.page.press("[data-testid=message-input]", "Enter")

    def bot(self, text: str) -> Any:
        """The newest bot message containing `text` (waited for)."""
        found = self.page.locator("[data-testid=message][data-from=bot]", has_text=text).last
        found.wait_for(timeout=WAIT)
        return found

    def press(self, message: Any, label: str) -> None:
        message.locator("[data-testid=inline-button]", has_text=label).first.click()

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_a_newcomer_generates_pays_and_redeems_in_the_browser(chat_url):
    with chromium(viewport={"width": 1100, "height": 860}) as browser:
        page = browser.new_page()
        chat = Chat(page)
        page.goto(f"{chat_url}#user=100002")  # Ben, a preset sandbox user who speaks English
        page.wait_for_selector("[data-testid=user-option][data-user-id='100002'].active", timeout=WAIT)

        chat.send("/start")
        menu = chat.bot("Main menu")
        chat.shot("sandbox-menu")

        chat.press(menu, "Create image")
        models = chat.bot("Choose a model")
        chat.press(models, "Nano Banana 2.1")
        chat.press(chat.bot("Nano Banana 2.1"), "Next")
        chat.bot("Describe the image")
        chat.send("a lighthouse on a cliff at dawn, watercolor")
        card = chat.bot("Check and confirm")
        # A new user has no tokens yet: the card shows the shortfall and a one-tap top-up.
        card.get_by_text("short").wait_for(timeout=WAIT)
        chat.shot("sandbox-confirm")

        chat.press(card, "Buy")
        methods = chat.bot("Telegram Stars")
        chat.press(methods, "Telegram Stars")
        pay = page.locator("[data-testid=pay-button]").last
        pay.wait_for(timeout=WAIT)
        pay.click()
        page.wait_for_selector("[data-testid=checkout]", timeout=WAIT)
        chat.shot("sandbox-payment")
        page.click("[data-testid=checkout-confirm]")
        paid = chat.bot("Payment received")

        chat.press(paid, "Back to the generation")
        card = chat.bot("Check and confirm")
        chat.press(card, "Generate")
        result = page.locator("[data-testid=message][data-from=bot]:has([data-testid=message-photo])").last
        result.wait_for(timeout=60_000)
        assert "lighthouse" in result.inner_text() and "DEMO" in result.inner_text()
        result.locator("[data-testid=message-photo]").evaluate("img => img.decode()")  # the picture loads
        assert result.locator("[data-testid=message-photo]").evaluate("img => img.naturalWidth") > 100
        # The status message ("sending the result…") is deleted once the result is there.
        status = page.locator("[data-testid=message][data-from=bot]", has_text="sending the result")
        status.first.wait_for(state="detached", timeout=WAIT)
        chat.shot("sandbox-result")

        # The video options come from the model's capabilities: 4K (8 s only), sound, frames, references.
        chat.send("/start")
        chat.press(chat.bot("Main menu"), "Create video")
        chat.press(chat.bot("Choose a model"), "Veo 3.1 Fast")
        options = chat.bot("with these options")
        chat.press(options, "4K")
        options = chat.bot("Quality: 4K")
        chat.press(options, "Sound: on")
        options = chat.bot("Sound: off")
        assert "Duration: 8 s" in options.inner_text() and "25.46 tok." in options.inner_text()
        chat.shot("sandbox-options")

        # Another sandbox user (Anna, Russian) redeems a promocode.
        chat.as_user(100001)
        chat.send("/start")
        menu = chat.bot("Главное меню")
        chat.press(menu, "Промокод")
        chat.bot("Пришлите промокод")
        chat.send("WELCOME2025")
        chat.bot("активирован")
        assert chat.errors == []
