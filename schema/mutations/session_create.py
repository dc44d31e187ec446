"""sessionCreate: exchange a Firebase ID token for our access token and a rotating refresh token."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.ports import SessionRefused
from schema.types.session import SessionPayload


@strawberry.input
class SessionCreateInput:
    firebase_id_token: str
    referral_code: str | None = strawberry.field(
        default=None,
        description="A friend's referral code, at sign-up. Checked before anything is written: an unknown code (or "
        "referrals off) refuses the sign-in. For a member who already exists it is applied like `referralApply`, "
        "and a code they cannot use any more (already referred, own code, window closed) does not refuse it.",
    )
    device_id: str | None = strawberry.field(
        default=None, description="The app installation's id (stored only as a keyed hash): the abuse checks."
    )


async def session_create(info: Info, input: SessionCreateInput) -> SessionPayload:
    try:
        session = await info.context.sessions.create(
            input.firebase_id_token, referral_code=input.referral_code, device_id=input.device_id
        )
        return SessionPayload.issued(session)
    except SessionRefused as error:
        return SessionPayload.refused(error, "firebase_id_token")
