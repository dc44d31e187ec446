"""Input checks shared by the domain's entry points: whole numbers, texts that fit their columns, store codes,
idempotency keys, business times.

Each raises `InvalidInput` naming the field at fault (the domain's snake_case name) before anything is written;
messages name it in words ("store code", not `storeCode`), or by the `label` the caller gives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from loyalty import clock
from loyalty.errors import InvalidInput

MAX_POINTS = 10**12
MAX_MONEY = MAX_POINTS * 100  # minor units
MAX_STORE_CODE = 32  # every store code column
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
    if not is_whole(value, low, high):
        raise InvalidInput(f"{_label(field, label)} must be a whole number of at least {low}", field=field)


def check_text(value: object, field: str, max_length: int, *, required: bool = True, label: str | None = None) -> str:
    """A text that fits its column (`max_length` characters); `required`: not empty or blank. Returns it.

    Over-long values used to reach the model and fail with Tortoise's `ValidationError` (not a `DomainError`, so the
    API showed a fault instead of a refusal) after the idempotency record was written. Callers that store a text
    stripped check it stripped.
    """
    if not isinstance(value, str) or len(value) > max_length or (required and not value.strip()):
        if required:
            raise InvalidInput(f"{_label(field, label)} must be 1 to {max_length} characters", field=field)
        raise InvalidInput(f"{_label(field, label)} must be at most {max_length} characters", field=field)
    return value


def check_store_code(store_code: object, field: str = "store_code") -> str:
    """A store code: 1 to `MAX_STORE_CODE` characters, not blank. Returns it."""
    return check_text(store_code, field, MAX_STORE_CODE)


def check_idempotency_key(idempotency_key: object, field: str = "idempotency_key") -> None:
    """A non-blank client key.

    Scoped keys such as f"{member_id}:{key}" are never empty themselves, so the idempotency helper's own check cannot
    catch an empty client key: every empty key of a member would otherwise share one record.
    """
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise InvalidInput("an idempotency key is required", field=field)


def check_occurred_at(occurred_at: datetime, field: str = "occurred_at") -> None:
    """A timezone-aware business time that is not in the future (beyond the tills' clock skew)."""
    if occurred_at.tzinfo is None:
        raise InvalidInput("the occurrence time needs a timezone", field=field)
    if occurred_at > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput("the occurrence time is in the future", field=field)
