"""The one decoder for global ids and cursor keys: canonical ASCII keys that fit their column, or nothing."""

from __future__ import annotations

import base64

import pytest
from graphql import GraphQLInterfaceType, build_schema
from strawberry import relay

from loyalty import models
from loyalty.keys import INT32, KeyRange
from schema.errors import BadRequest
from schema.global_ids import ACTIVITY_ENTRY, MEMBER, NODE_TYPES, OFFER, REWARD, VOUCHER, NodeType
from schema.member_schema import build_member_schema
from schema.types.pagination import decode_cursor, decode_cursor_key, encode_cursor


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def test_an_id_round_trips_and_is_strawberrys_encoding() -> None:
    assert REWARD.encode(7) == relay.to_base64("Reward", 7) == b64("Reward:7")
    assert REWARD.decode(REWARD.encode(7)) == 7
    assert MEMBER.decode(MEMBER.encode(2**31 - 1)) == 2**31 - 1
    assert ACTIVITY_ENTRY.decode(ACTIVITY_ENTRY.encode(2**63 - 1)) == 2**63 - 1


@pytest.mark.parametrize(
    "key",
    [
        "²",  # superscript two: str.isdigit() says yes, int() says no
        "\N{ARABIC-INDIC DIGIT THREE}",  # int() reads it as 3
        "\N{ARABIC-INDIC DIGIT ZERO}\N{ARABIC-INDIC DIGIT SEVEN}",
        "\N{FULLWIDTH DIGIT THREE}",  # int() reads it as 3
        "-1",
        "0",
        "+7",
        " 7",
        "7 ",
        "1_000",
        "007",  # refused rather than read as 7: every object has one id
        "",
        "7:8",
        "1e3",
    ],
)
def test_a_key_that_is_not_canonical_ascii_decimal_is_refused(key: str) -> None:
    assert REWARD.decode(b64(f"Reward:{key}")) is None


@pytest.mark.parametrize(
    ("node_type", "key"),
    [
        (REWARD, str(2**31)),  # above a 32-bit IntField primary key
        (VOUCHER, "99999999999"),
        (MEMBER, str(2**63)),
        (ACTIVITY_ENTRY, str(2**63)),  # above a 64-bit BigIntField primary key
        (ACTIVITY_ENTRY, str(10**25)),
        (OFFER, "9" * 5000),  # longer than int() parses at all: refused by length first
    ],
)
def test_a_key_above_the_primary_key_column_is_refused(node_type: NodeType, key: str) -> None:
    assert node_type.decode(b64(f"{node_type.name}:{key}")) is None


def test_the_key_bounds_are_the_models_primary_key_columns() -> None:
    assert MEMBER.key_range == REWARD.key_range == VOUCHER.key_range == OFFER.key_range == KeyRange(1, 2**31 - 1)
    assert ACTIVITY_ENTRY.key_range == KeyRange(1, 2**63 - 1)
    assert ACTIVITY_ENTRY.decode(b64(f"ActivityEntry:{2**31}")) == 2**31


@pytest.mark.parametrize(
    "global_id",
    [
        b64("Voucher:7"),  # another type's id
        b64("reward:7"),  # type names are case-sensitive
        b64("Re:ward:7"),  # a type name with a colon
        b64("Reward"),  # no key at all
        "",
        "Reward:7",  # not base64
        "UmV3YXJkOjc*",
        "UmV3 YXJkOjc=",  # strawberry's decoder would skip the space; ours refuses it
        b64(b"Reward:\xff7"),  # not UTF-8
        b64(b"\xfe\xff"),
        "U",  # one base64 character is no byte
        b64("Reward:" + "7" * 150),  # far longer than any id
    ],
)
def test_anything_but_an_id_of_the_type_is_refused(global_id: str) -> None:
    assert REWARD.decode(global_id) is None


def test_missing_and_extra_padding_are_accepted() -> None:
    padded = b64("Reward:12")  # "UmV3YXJkOjEy": no padding needed
    one = b64("Reward:1")  # "UmV3YXJkOjE=": one padding character

    assert REWARD.decode(padded + "==") == 12
    assert REWARD.decode(one.rstrip("=")) == 1
    assert REWARD.decode(one + "==") == 1


def test_resolve_nodes_keys_and_picks_by_the_same_rule() -> None:
    node_ids = ["7", "007", "²", str(2**31), "8"]

    assert REWARD.keys(node_ids) == [7, 8]
    assert REWARD.pick({7: "seven", 8: "eight"}, node_ids) == ["seven", None, None, None, "eight"]


def test_every_node_type_of_the_member_schema_is_registered() -> None:
    schema = build_schema(build_member_schema(production=False).as_str())
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)

    assert {t.name for t in schema.get_implementations(node).objects} == set(NODE_TYPES)
    assert {t.name: t.key_range.high for t in NODE_TYPES.values()} == {
        "Member": models.Member.describe()["pk_field"]["constraints"]["le"],
        "ActivityEntry": models.LedgerEntry.describe()["pk_field"]["constraints"]["le"],
        "Voucher": models.Voucher.describe()["pk_field"]["constraints"]["le"],
        "Offer": models.Offer.describe()["pk_field"]["constraints"]["le"],
        "Reward": models.Reward.describe()["pk_field"]["constraints"]["le"],
        "InboxMessage": models.PushMessage.describe()["pk_field"]["constraints"]["le"],
        "CashbackEntry": models.CashbackEntry.describe()["pk_field"]["constraints"]["le"],
    }


# --- cursors ---------------------------------------------------------------------------------------


def test_a_cursor_round_trips_with_negative_parts() -> None:
    cursor = encode_cursor("offer", 1, -5, 0, 9)

    assert decode_cursor_key("offer", cursor, KeyRange(0, 1), INT32, INT32, OFFER.key_range) == (1, -5, 0, 9)
    assert decode_cursor_key("offer", cursor.rstrip("="), KeyRange(0, 1), INT32, INT32, OFFER.key_range) == (
        1,
        -5,
        0,
        9,
    )


@pytest.mark.parametrize(
    "part",
    [
        str(2**31),
        str(2**63),
        str(10**25),
        "²",
        "\N{ARABIC-INDIC DIGIT THREE}",
        "\N{FULLWIDTH DIGIT THREE}",
        "-0",
        "-07",
        "07",
        "+7",
        " 7",
        "",
        "\N{MINUS SIGN}7",
    ],
)
def test_a_cursor_key_out_of_range_or_not_canonical_is_a_bad_request(part: str) -> None:
    cursor = base64.urlsafe_b64encode(f"voucher:{part}".encode()).decode()

    with pytest.raises(BadRequest, match="`after` is not a cursor from this list"):
        decode_cursor("voucher", cursor, VOUCHER.key_range)
