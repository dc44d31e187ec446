"""The member's consents: per channel and purpose, granted or not, and when that last changed."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty import models
from loyalty.consent import ConsentState
from schema.types.enum_map import EnumMap


@strawberry.enum(name="ConsentChannel", description="How we may reach you.")
class ConsentChannel(Enum):
    PUSH = "PUSH"
    EMAIL = "EMAIL"
    SMS = "SMS"


@strawberry.enum(name="ConsentPurpose", description="What for: MARKETING is offers and campaigns.")
class ConsentPurpose(Enum):
    MARKETING = "MARKETING"


CONSENT_CHANNELS = EnumMap(
    models.ConsentChannel,
    ConsentChannel,
    {
        models.ConsentChannel.PUSH: ConsentChannel.PUSH,
        models.ConsentChannel.EMAIL: ConsentChannel.EMAIL,
        models.ConsentChannel.SMS: ConsentChannel.SMS,
    },
)
CONSENT_PURPOSES = EnumMap(
    models.ConsentPurpose, ConsentPurpose, {models.ConsentPurpose.MARKETING: ConsentPurpose.MARKETING}
)


@strawberry.type(name="Consent")
class Consent:
    channel: ConsentChannel
    purpose: ConsentPurpose
    granted: bool = strawberry.field(description="False until you opt in.")
    changed_at: datetime | None = strawberry.field(description="When you last granted or withdrew it; null if never.")

    @classmethod
    def from_domain(cls, state: ConsentState) -> Consent:
        return cls(
            channel=CONSENT_CHANNELS.to_api(state.channel),
            purpose=CONSENT_PURPOSES.to_api(state.purpose),
            granted=state.granted,
            changed_at=state.changed_at,
        )
