"""Sending to Telegram from outside the update handlers: `sender.get_sender()` (workers, broadcasts)."""
