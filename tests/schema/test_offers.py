"""The app's offers screen and offerActivate: exact fields, ranking, pages, isolation and the SQL budget."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

from loyalty.clock import FrozenClock
from loyalty.models import Member, OfferActivation, OutboxEvent, Tier
from tests.conftest import START
from tests.loyalty.test_offers import new_offer
from tests.schema.conftest import SQLCounter

OPERATIONS = Path(__file__).parents[2] / "mobile-client-mock" / "operations"
OFFERS_QUERY = (OPERATIONS / "Offers.graphql").read_text()
ACTIVATE = (OPERATIONS / "OfferActivate.graphql").read_text()


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def _names(client: Any, first: int = 20, after: str | None = None) -> tuple[list[str], dict[str, Any]]:
    query = (
        "query($first: Int!, $after: String) { me { offers(first: $first, after: $after) {"
        " edges { node { name } } pageInfo { hasNextPage endCursor } } } }"
    )
    offers = (await client.execute(query, {"first": first, "after": after}))["data"]["me"]["offers"]
    return [e["node"]["name"] for e in offers["edges"]], offers["pageInfo"]


async def test_the_offers_screen_shows_every_field(anna: Member, as_member: Any) -> None:
    offer = await new_offer(
        name="Coffee on us",
        description="A free coffee with any purchase over 50 EUR",
        benefit="free_item",
        value=0,
        sku="SKU-COFFEE",
        valid_from=START - timedelta(days=1),
        valid_until=START + timedelta(days=7),
        per_member_limit=2,
        requires_activation=True,
        min_spend=5_000,
    )

    result = await as_member(anna).execute(OFFERS_QUERY)

    assert "errors" not in result
    me = result["data"]["me"]
    assert me["lifecycleStage"] == "NEW"
    assert [e["node"] for e in me["offers"]["edges"]] == [
        {
            "id": gid("Offer", offer.id),
            "name": "Coffee on us",
            "description": "A free coffee with any purchase over 50 EUR",
            "benefit": "FREE_ITEM",
            "value": 0,
            "freeItemSku": "SKU-COFFEE",
            "validFrom": (START - timedelta(days=1)).isoformat(),
            "validUntil": (START + timedelta(days=7)).isoformat(),
            "requiresActivation": True,
            "activated": False,
            "remainingUses": 2,
            "minSpend": 5_000,
        }
    ]
    assert me["offers"]["pageInfo"] == {"hasNextPage": False, "endCursor": me["offers"]["edges"][0]["cursor"]}


async def test_lifecycle_stage_follows_the_program_thresholds(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    stages = []
    for days in (29, 1, 30, 120):  # 29, 30, 60 and 180 days after enrollment
        clock.advance(timedelta(days=days))
        stages.append((await as_member(anna).execute("{ me { lifecycleStage } }"))["data"]["me"]["lifecycleStage"])

    assert stages == ["NEW", "ACTIVE", "LAPSING", "LAPSED"]


async def test_offers_are_ranked_and_paged_with_cursors(anna: Member, as_member: Any) -> None:
    for priority in range(5):
        await new_offer(name=f"p{priority}", priority=priority)
    client = as_member(anna)

    pages = []
    after = None
    while True:
        names, page_info = await _names(client, first=2, after=after)
        pages.append(names)
        if not page_info["hasNextPage"]:
            break
        after = page_info["endCursor"]

    assert pages == [["p4", "p3"], ["p2", "p1"], ["p0"]]


async def test_the_next_page_starts_after_the_cursor_even_if_that_offer_is_gone(anna: Member, as_member: Any) -> None:
    # Given Anna read a first page ending with p3, and p3 was then redeemed (it no longer applies to her)
    offers = [await new_offer(name=f"p{priority}", priority=priority) for priority in range(5)]
    client = as_member(anna)
    _, page_info = await _names(client, first=2)
    await offers[3].delete()

    # Then the second page is exactly what came after p3
    assert (await _names(client, first=2, after=page_info["endCursor"]))[0] == ["p2", "p1"]


async def test_bad_page_arguments_are_bad_requests(anna: Member, as_member: Any) -> None:
    query = "query($first: Int!, $after: String) { me { offers(first: $first, after: $after) { edges { cursor } } } }"
    forged = [
        base64.urlsafe_b64encode(b"activity:1").decode(),
        base64.urlsafe_b64encode(b"offer:1:2:x:4").decode(),
        "not base64!",
    ]
    client = as_member(anna)

    answers = [await client.execute(query, {"first": 101, "after": None})]
    answers += [await client.execute(query, {"first": 1, "after": cursor}) for cursor in forged]

    assert [a["data"] for a in answers] == [None] * 4
    assert [a["errors"][0]["extensions"] for a in answers] == [{"code": "BAD_REQUEST"}] * 4
    assert answers[0]["errors"][0]["message"] == "`first` must be between 1 and 100"


async def test_a_member_sees_only_offers_targeted_at_them(anna: Member, bo: Member, as_member: Any) -> None:
    # Given a Gold-only offer that Bo (Gold) gets and Anna (Member tier) does not
    gold_only = await new_offer(name="Gold only", tier_names=["Gold"])
    await Member.filter(id=bo.id).update(tier_id=(await Tier.get(name="Gold")).id)
    query = "query($id: ID!) { node(id: $id) { ... on Offer { name } } }"

    # Then it is in Bo's list and refetchable by him, and for Anna it looks exactly like a missing offer
    assert (await _names(as_member(bo)))[0] == ["Gold only"]
    assert (await _names(as_member(anna)))[0] == []
    assert await as_member(bo).execute(query, {"id": gid("Offer", gold_only.id)}) == {
        "data": {"node": {"name": "Gold only"}}
    }
    assert await as_member(anna).execute(query, {"id": gid("Offer", gold_only.id)}) == {"data": {"node": None}}
    assert await as_member(anna).execute(query, {"id": gid("Offer", 999_999)}) == {"data": {"node": None}}


async def test_offers_sql_count_does_not_grow_with_the_number_of_offers(
    anna: Member, as_member: Any, sql_counter: SQLCounter
) -> None:
    client = as_member(anna)
    first = await new_offer(name="first", requires_activation=True)
    await client.execute(ACTIVATE, {"offerId": gid("Offer", first.id)})
    await client.execute(OFFERS_QUERY)  # warm the program cache
    sql_counter.statements.clear()
    await client.execute(OFFERS_QUERY)
    with_one = len(sql_counter.statements)

    for i in range(30):
        await new_offer(name=f"more {i}", requires_activation=i % 2 == 0)
    sql_counter.statements.clear()
    result = await client.execute(OFFERS_QUERY)

    assert len(result["data"]["me"]["offers"]["edges"]) == 20
    # the member, the running offers with the member's use of them
    assert len(sql_counter.statements) == with_one == 2, sql_counter.statements


# --- offerActivate --------------------------------------------------------------------------------


async def test_activating_an_offer_marks_it_activated_and_ranks_it_first(anna: Member, as_member: Any) -> None:
    await new_offer(name="top priority", priority=10)
    clip = await new_offer(name="clip me", requires_activation=True)
    client = as_member(anna)

    first = await client.execute(ACTIVATE, {"offerId": gid("Offer", clip.id)})
    again = await client.execute(ACTIVATE, {"offerId": gid("Offer", clip.id)})

    expected = {
        "offerActivate": {
            "offer": {"id": gid("Offer", clip.id), "activated": True, "remainingUses": 1},
            "userErrors": [],
        }
    }
    assert first == again == {"data": expected}
    assert (await _names(client))[0] == ["clip me", "top priority"]
    assert await OfferActivation.filter(member_id=anna.id).count() == 1
    assert await OutboxEvent.filter(type="offer.activated").count() == 1


async def test_an_offer_that_does_not_apply_cannot_be_activated(anna: Member, bo: Member, as_member: Any) -> None:
    # Given an offer for Gold members only (Bo is Gold, Anna is not), an offer that has ended, and bad ids
    gold_only = await new_offer(name="Gold only", tier_names=["Gold"], requires_activation=True)
    ended = await new_offer(name="Ended", valid_until=START, requires_activation=True)
    await Member.filter(id=bo.id).update(tier_id=(await Tier.get(name="Gold")).id)
    ids = [gid("Offer", gold_only.id), gid("Offer", ended.id), gid("Offer", 999_999), gid("Member", anna.id), "?"]

    # When Anna tries to activate each of them
    answers = [await as_member(anna).execute(ACTIVATE, {"offerId": i}) for i in ids]

    # Then each is the same OFFER_NOT_FOUND, and nothing was written
    refused = {
        "offer": None,
        "userErrors": [{"code": "OFFER_NOT_FOUND", "message": "no such offer", "field": ["input", "offerId"]}],
    }
    assert answers == [{"data": {"offerActivate": refused}}] * 5
    assert await OfferActivation.all().count() == 0
    assert await OutboxEvent.filter(type="offer.activated").count() == 0


async def test_activation_of_one_member_does_not_show_for_another(anna: Member, bo: Member, as_member: Any) -> None:
    clip = await new_offer(name="clip me", requires_activation=True)

    await as_member(anna).execute(ACTIVATE, {"offerId": gid("Offer", clip.id)})
    result = await as_member(bo).execute("{ me { offers { edges { node { name activated } } } } }")

    assert result["data"]["me"]["offers"]["edges"] == [{"node": {"name": "clip me", "activated": False}}]


async def test_offer_activate_needs_a_signed_in_member(anna: Member, as_member: Any) -> None:
    offer = await new_offer()

    result = await as_member(None).execute(ACTIVATE, {"offerId": gid("Offer", offer.id)})

    assert result["data"] is None
    assert result["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert await OfferActivation.all().count() == 0
