"""The API's enums are declared in the schema on purpose: each one behind a domain enum maps it member by member, and
what the API does not show is listed as hidden. A new domain value fails here until someone decides which it is."""

from collections import Counter
from enum import Enum, EnumMeta
from typing import Any

import pytest
import strawberry
from graphql import GraphQLEnumType, build_schema
from strawberry.types.enum import StrawberryEnumDefinition

from loyalty.models import EntryKind
from schema.member_schema import build_member_schema
from schema.staff.mutations.membership_payment_record import PAYMENT_OUTCOMES
from schema.staff.mutations.points_adjust import ADJUSTMENT_REASONS
from schema.staff.mutations.referral_review import REVIEW_DECISIONS
from schema.staff.push_campaigns import PUSH_CAMPAIGN_STATUSES
from schema.staff.referrals import REFERRAL_STATUSES
from schema.staff.schema import build_staff_schema
from schema.subscriptions.member_updated import MEMBER_CHANGES
from schema.types.activity import ACTIVITY_KINDS
from schema.types.cashback import CASHBACK_KINDS
from schema.types.consent import CONSENT_CHANNELS, CONSENT_PURPOSES
from schema.types.device import DEVICE_PLATFORMS
from schema.types.enum_map import EnumMap
from schema.types.membership import MEMBERSHIP_PERIODS, MEMBERSHIP_STATUSES
from schema.types.offer import LIFECYCLE_STAGES, OFFER_BENEFITS
from schema.types.reward import REWARD_KINDS, UNAVAILABLE_REASONS
from schema.types.voucher import VOUCHER_STATUSES

ENUM_MAPS: list[EnumMap[Any, Any]] = [
    ACTIVITY_KINDS,
    VOUCHER_STATUSES,
    OFFER_BENEFITS,
    LIFECYCLE_STAGES,
    REWARD_KINDS,
    UNAVAILABLE_REASONS,
    ADJUSTMENT_REASONS,
    MEMBER_CHANGES,
    DEVICE_PLATFORMS,
    CONSENT_CHANNELS,
    CONSENT_PURPOSES,
    PUSH_CAMPAIGN_STATUSES,
    REFERRAL_STATUSES,
    REVIEW_DECISIONS,
    MEMBERSHIP_STATUSES,
    MEMBERSHIP_PERIODS,
    PAYMENT_OUTCOMES,
    CASHBACK_KINDS,
]


def map_problems(enum_map: EnumMap[Any, Any]) -> list[str]:
    """What is wrong with a map: a domain member neither shown nor hidden (or both), an API member that stands for
    no domain member or for several, a key or value of another enum."""
    domain, api = enum_map.domain_enum, enum_map.api_enum
    problems = []
    for member in domain:
        shown, hidden = member in enum_map.pairs, member in enum_map.hidden
        if not shown and not hidden:
            problems.append(f"{domain.__name__}.{member.name} is neither mapped to {api.__name__} nor hidden")
        elif shown and hidden:
            problems.append(f"{domain.__name__}.{member.name} is both mapped and hidden")
    problems += [
        f"{key!r} is not a {domain.__name__}" for key in [*enum_map.pairs, *enum_map.hidden] if type(key) is not domain
    ]
    problems += [f"{value!r} is not a {api.__name__}" for value in enum_map.pairs.values() if type(value) is not api]
    times = Counter(enum_map.pairs.values())
    problems += [
        f"{api.__name__}.{member.name} stands for {times[member]} {domain.__name__} members"
        for member in api
        if times[member] != 1
    ]
    return problems


def _api_enums(schema: strawberry.Schema) -> dict[str, EnumMeta]:
    """The schema's enums but the mutations' error codes (declared with their mutation, not behind a domain enum)."""
    names = [
        t.name
        for t in build_schema(str(schema)).type_map.values()
        if isinstance(t, GraphQLEnumType) and not t.name.startswith("__") and not t.name.endswith("ErrorCode")
    ]
    return {name: _enum_definition(schema, name).wrapped_cls for name in names}


def _enum_definition(schema: strawberry.Schema, name: str) -> StrawberryEnumDefinition:
    definition = schema.get_type_by_name(name)
    assert isinstance(definition, StrawberryEnumDefinition)
    return definition


def test_every_domain_value_is_shown_or_hidden_on_purpose() -> None:
    assert {m.api_enum.__name__: map_problems(m) for m in ENUM_MAPS} == {m.api_enum.__name__: [] for m in ENUM_MAPS}


def test_every_enum_of_both_schemas_is_declared_behind_its_map() -> None:
    # Given both schemas, when their enums are listed
    exposed = _api_enums(build_member_schema(production=False)) | _api_enums(build_staff_schema(production=False))

    # Then each is the API side of exactly one map (no domain enum is served directly)
    assert exposed == {m.api_enum.__name__: m.api_enum for m in ENUM_MAPS}


def test_maps_show_domain_values_under_their_own_names_and_hide_only_maturing() -> None:
    # Today every shown value keeps its name; only the ledger's MATURE bookkeeping entry is not shown
    assert [(d, a) for m in ENUM_MAPS for d, a in m.pairs.items() if d.name != a.name] == []
    assert {m.api_enum.__name__: m.hidden for m in ENUM_MAPS if m.hidden} == {
        "ActivityKind": frozenset({EntryKind.MATURE})
    }


def test_inputs_map_back_to_the_domain_value_they_stand_for() -> None:
    round_trips = [(d, m.to_domain(m.to_api(d))) for m in ENUM_MAPS for d in m.pairs]

    assert [(d, back) for d, back in round_trips if back is not d] == []
    assert len(round_trips) == 75  # every shown value of the eighteen enums


def test_a_hidden_value_has_no_api_value() -> None:
    with pytest.raises(KeyError):
        ACTIVITY_KINDS.to_api(EntryKind.MATURE)


# --- the check on synthetic enums --------------------------------------------------------------------------------


class Color(Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"
    ULTRAVIOLET = "uv"  # added to the domain later


class ApiColor(Enum):
    RED = "RED"
    GREEN = "GREEN"
    BLUE = "BLUE"


def test_check_reports_a_new_domain_value_nobody_mapped() -> None:
    # Given a map written before ULTRAVIOLET was added to the domain
    colors = EnumMap(Color, ApiColor, {Color.RED: ApiColor.RED, Color.GREEN: ApiColor.GREEN, Color.BLUE: ApiColor.BLUE})

    # When checked, then the new value is reported
    assert map_problems(colors) == ["Color.ULTRAVIOLET is neither mapped to ApiColor nor hidden"]


def test_check_reports_double_mappings_unreachable_api_values_and_foreign_members() -> None:
    # Given a map that shows two colors as RED, never produces BLUE, hides one it also shows, and hides an EntryKind
    colors = EnumMap(
        Color,
        ApiColor,
        {Color.RED: ApiColor.RED, Color.GREEN: ApiColor.GREEN, Color.BLUE: ApiColor.RED},
        hidden=frozenset({Color.ULTRAVIOLET, Color.GREEN, EntryKind.MATURE}),
    )

    # When checked, then each mistake is reported
    assert sorted(map_problems(colors)) == [
        "<EntryKind.MATURE: 'mature'> is not a Color",
        "ApiColor.BLUE stands for 0 Color members",
        "ApiColor.RED stands for 2 Color members",
        "Color.GREEN is both mapped and hidden",
    ]
