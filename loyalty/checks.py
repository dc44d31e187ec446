"""Input checks shared by the domain's entry points: whole numbers, texts that fit their columns, store codes,
idempotency keys, business times.

Texts are checked before anything reaches the database: PostgreSQL refuses a NUL in text and a lone surrogate (which
has no UTF-8 encoding) with a database error, and SQLite would store them. So every text refuses NUL and the other
control characters (a note may keep tabs and line breaks) and lone surrogates; codes and references (store codes,
receipt ids, idempotency keys, SKUs) are printable characters only, so no invisible or line-breaking one either.

Each raises `InvalidInput` naming the field at fault (the domain's snake_case name) before anything is written;
messages name it in words ("store code", not `storeCode`), or by the `label` the caller gives.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta

from loyalty import clock
from loyalty.errors import InvalidInput

MAX_POINTS = 10**12
MAX_MONEY = MAX_POINTS * 100  # minor units
MAX_STORE_CODE = 32  # every store code column
MAX_REFERENCE = 64  # receipt and refund ids, SKUs and categories (their columns)
MAX_NAME = 100  # display names, key names (their columns)
MAX_EMAIL = 254  # RFC 5321's limit on a forward path, and the email columns
MAX_IDEMPOTENCY_KEY = 100  # a client's key; stored scoped (`<member id>:<key>`) in a 128-character column
_MULTILINE = frozenset("\t\n\r")
# A purchase or event may be reported a little late but not from the future (clock skew between tills).
FUTURE_TOLERANCE = timedelta(minutes=5)


def _label(field: str, label: str | None) -> str:
    return label if label is not None else field.replace("_", " ")


def is_whole(value: object, low: int, high: int) -> bool:
    """True for an `int` in [low, high]; `bool` is an `int` subclass, and `True` must not pass as 1."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_amount(
    value: object, field: str, *, allow_zero: bool = False, high: int = MAX_MONEY, label: str | None = None
) -> None:
    """A whole number of at least 1 (or 0 with `allow_zero`) and at most `high`."""
    low = 0 if allow_zero else 1
    if isinstance(value, int) and not isinstance(value, bool) and value > high:
        raise InvalidInput(f"{_label(field, label)} must be at most {high}", field=field)
    if not is_whole(value, low, high):
        raise InvalidInput(f"{_label(field, label)} must be a whole number of at least {low}", field=field)


def is_clean_text(value: str, *, multiline: bool = False) -> bool:
    """True if `value` has no control character (Unicode Cc: NUL, C0, DEL, C1; with `multiline` tabs and line
    breaks are allowed) and no lone surrogate (Cs)."""
    if value.isprintable():  # the common case, in C: no Cc, Cs (nor Cf, Zl, Zp, Co, Cn, non-space Zs)
        return True
    return not any(unicodedata.category(c) in ("Cc", "Cs") and not (multiline and c in _MULTILINE) for c in value)


def clean_text(value: str, max_length: int) -> str:
    """`value` without the characters `is_clean_text` refuses, stripped and cut to `max_length`: for texts we store
    but do not refuse, such as the name an identity provider gives at the first sign-in."""
    if not is_clean_text(value):
        value = "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cs"))
    return value.strip()[:max_length]


def check_text(
    value: object,
    field: str,
    max_length: int,
    *,
    required: bool = True,
    label: str | None = None,
    multiline: bool = False,
) -> str:
    """A text that fits its column (`max_length` characters) and is clean (`is_clean_text`); `required`: not empty
    or blank. Returns it.

    Over-long values used to reach the model and fail with Tortoise's `ValidationError` (not a `DomainError`, so the
    API showed a fault instead of a refusal) after the idempotency record was written. Callers that store a text
    stripped check it stripped.
    """
    if not isinstance(value, str) or len(value) > max_length or (required and not value.strip()):
        if required:
            raise InvalidInput(f"{_label(field, label)} must be 1 to {max_length} characters", field=field)
        raise InvalidInput(f"{_label(field, label)} must be at most {max_length} characters", field=field)
    if not is_clean_text(value, multiline=multiline):
        raise InvalidInput(
            f"{_label(field, label)} must not contain control characters or unpaired surrogates", field=field
        )
    return value


def check_code(value: object, field: str, max_length: int, *, label: str | None = None) -> str:
    """A code or reference: 1 to `max_length` printable characters (`str.isprintable`: no control, invisible,
    line-breaking or unassigned character, no lone surrogate; spaces allowed), not blank. Returns it."""
    text = check_text(value, field, max_length, label=label)
    if not text.isprintable():
        raise InvalidInput(f"{_label(field, label)} must be printable characters only", field=field)
    return text


def check_store_code(store_code: object, field: str = "store_code") -> str:
    """A store code: 1 to `MAX_STORE_CODE` printable characters, not blank. Returns it."""
    return check_code(store_code, field, MAX_STORE_CODE)


def check_idempotency_key(idempotency_key: object, field: str = "idempotency_key") -> None:
    """A non-blank client key of at most `MAX_IDEMPOTENCY_KEY` printable characters.

    Scoped keys such as f"{member_id}:{key}" are never empty themselves, so the idempotency helper's own check cannot
    catch an empty client key: every empty key of a member would otherwise share one record.
    """
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise InvalidInput("an idempotency key is required", field=field)
    check_code(idempotency_key, field, MAX_IDEMPOTENCY_KEY, label="an idempotency key")


def check_occurred_at(occurred_at: datetime, field: str = "occurred_at") -> None:
    """A timezone-aware business time that is not in the future (beyond the tills' clock skew)."""
    if occurred_at.tzinfo is None:
        raise InvalidInput("the occurrence time needs a timezone", field=field)
    if occurred_at > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput("the occurrence time is in the future", field=field)
