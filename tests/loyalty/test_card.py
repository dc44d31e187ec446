"""The rotating checkout code: RFC 6238 TOTP (HMAC-SHA-1, 6 digits), the rule the app and the Google pass share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loyalty import card
from loyalty.models import Member

RFC_KEY = b"12345678901234567890"  # RFC 6238 appendix B's SHA-1 key
PERIOD = 30


def _member(secret: str = RFC_KEY.hex(), number: str = "1000000009") -> Member:
    return Member(member_number=number, card_secret=secret)


def test_hotp_matches_rfc_4226_test_values() -> None:
    # RFC 4226 appendix D: the 6-digit HOTP values of counters 0..9
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

    assert [card.hotp(RFC_KEY, counter) for counter in range(10)] == expected


def test_totp_matches_rfc_6238_test_vectors() -> None:
    # RFC 6238 appendix B (SHA-1, 30 s steps): 8-digit values; the card shows their last 6 digits
    vectors = {
        59: "94287082",
        1111111109: "07081804",
        1111111111: "14050471",
        1234567890: "89005924",
        2000000000: "69279037",
        20000000000: "65353130",
    }
    for unix, value in vectors.items():
        at = datetime.fromtimestamp(unix, UTC)

        assert card.hotp(RFC_KEY, card.totp_window(at, PERIOD), digits=8) == value
        assert card.card_code(_member(), at, PERIOD).code == value[-6:]


def test_the_code_expires_at_the_end_of_its_window() -> None:
    at = datetime.fromtimestamp(59, UTC)

    code = card.card_code(_member(), at, PERIOD)

    assert code == card.CardCode(
        code="287082", barcode_value="1000000009287082", expires_at=datetime.fromtimestamp(60, UTC)
    )


def test_window_edges_the_last_second_and_the_first_of_the_next() -> None:
    member = _member()
    last = datetime.fromtimestamp(1111111109, UTC)  # 37037036 * 30 + 29
    first = last + timedelta(seconds=1)

    assert card.card_code(member, last, PERIOD).code == "081804"
    assert card.card_code(member, first, PERIOD).code == "050471"
    assert card.card_code_window(member, "081804", last, PERIOD) == 37037036
    assert card.card_code_window(member, "050471", first, PERIOD) == 37037037


def test_one_window_of_skew_either_way_and_no_more() -> None:
    member = _member()
    now = datetime(2026, 3, 2, 12, 0, 15, tzinfo=UTC)
    window = card.totp_window(now, PERIOD)
    codes = {skew: card.card_code(member, now + timedelta(seconds=skew * PERIOD), PERIOD).code for skew in range(-3, 4)}

    accepted = {skew: card.card_code_window(member, code, now, PERIOD) for skew, code in codes.items()}

    assert accepted == {-3: None, -2: None, -1: window - 1, 0: window, 1: window + 1, 2: None, 3: None}


def test_another_members_secret_gives_another_code() -> None:
    anna, bo = _member(), _member(secret=bytes(range(20)).hex(), number="1000000017")
    now = datetime.fromtimestamp(59, UTC)

    bos_code = card.card_code(bo, now, PERIOD).code

    assert bos_code == card.hotp(bytes(range(20)), 1)
    assert bos_code != "287082"
    assert card.card_code_window(anna, bos_code, now, PERIOD) is None


def test_malformed_codes_are_refused() -> None:
    now = datetime.fromtimestamp(59, UTC)
    for code in ["", "28708", "2870822", "28708a", "\uff12\uff18\uff17\uff10\uff18\uff12", " 87082", "-87082"]:
        assert card.card_code_window(_member(), code, now, PERIOD) is None


def test_the_google_key_is_the_same_secret_in_base16() -> None:
    assert card.totp_key_base16(_member()) == "3132333435363738393031323334353637383930"
    assert bytes.fromhex(card.totp_key_base16(_member())) == RFC_KEY
