"""Contact details as they identify a person: the same mailbox, whatever spelling of it an account was made with.

`email_key` is what the referral abuse checks compare (`Member.email_key`, kept in step with `Member.email`).
"""

from __future__ import annotations

# Providers that deliver `name+anything@` to `name@`, and those that also ignore dots in the local part.
_PLUS_TAGS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "fastmail.com",
        "protonmail.com",
        "proton.me",
        "pm.me",
    }
)
_IGNORES_DOTS = frozenset({"gmail.com", "googlemail.com"})
_ALIASES = {"googlemail.com": "gmail.com"}


def email_key(email: str | None) -> str | None:
    """The mailbox `email` reaches: lower case; `+tags` dropped and dots ignored where the provider does so.

    None for None or for text that is not an address (no `@`, or an empty side of it).
    """
    if email is None:
        return None
    local, at, domain = email.strip().lower().rpartition("@")
    if not at or not local or not domain:
        return None
    if domain in _PLUS_TAGS:
        local = local.split("+", 1)[0]
    if domain in _IGNORES_DOTS:
        local = local.replace(".", "")
    domain = _ALIASES.get(domain, domain)
    return f"{local}@{domain}" if local else None


_PHONE_PUNCTUATION = str.maketrans("", "", " -()./")


def phone_key(phone: str | None) -> str | None:
    """The number `phone` dials, written one way (spaces, dashes, dots and brackets dropped; `+` kept), or None."""
    if phone is None:
        return None
    digits = phone.translate(_PHONE_PUNCTUATION)
    body = digits.removeprefix("+")
    return digits if 6 <= len(body) <= 15 and body.isascii() and body.isdigit() else None
