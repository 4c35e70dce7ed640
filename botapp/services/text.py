"""Text the database can store.

PostgreSQL refuses NUL (U+0000) in text and in JSON (`\\u0000` in jsonb), and no database can store
a lone UTF-16 surrogate (U+D800..U+DFFF: JSON's `"\\ud800"` escape decodes to one in Python, and
encoding it as UTF-8 fails in psycopg and sqlite3 alike). Every other Unicode text is storable.
"""

from __future__ import annotations


def is_storable(*, text: str) -> bool:
    """False when `text` holds a NUL or a lone surrogate (cheap for ASCII, the common case)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(*, text: str) -> str:
    """`text` without its NULs and lone surrogates (for fields we clean rather than refuse)."""
    if is_storable(text=text):
        return text
    return text.encode("utf-8", "ignore").decode("utf-8").replace("\x00", "")
