"""The rule of botapp.services.text against the database itself: a text is storable exactly when
the database stores it (PostgreSQL refuses NUL; no database takes a lone surrogate)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from botapp.services.text import is_storable, storable

SAMPLES = ["plain", "кириллица 😀", "\ufffe\U0010ffff", "a\x00b", "\x00", "lone \ud800", "low \udfff", "я\ud83d"]


def _stores(make_user, text: str) -> bool:
    user = make_user()
    try:
        with transaction.atomic():
            type(user).objects.filter(pk=user.pk).update(first_name=text)
    except (DatabaseError, ValueError, UnicodeEncodeError):
        return False
    return True


@pytest.mark.postgres
@pytest.mark.parametrize("text", SAMPLES)
def test_storable_is_what_postgresql_stores(make_user, text):
    assert is_storable(text=text) == _stores(make_user, text)


@pytest.mark.parametrize("text", SAMPLES)
def test_the_cleaned_text_is_stored(make_user, text):
    cleaned = storable(text=text)
    assert is_storable(text=cleaned)
    assert _stores(make_user, cleaned)
    assert cleaned == text or len(cleaned) < len(text)
