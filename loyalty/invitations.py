"""What a referral link's landing page (`/r/<code>`, `api/referral_page.py`) may show: the program and the friend's
offer, never anything about the member whose code it is.

`invitation(code)` is one statement whatever the code (`sql.rows`, a hot read): the program's configuration version
with whether a member holds the code (a scalar subquery on the unique `member.referral_code` index), so the snapshot of
`program.current_configuration` is used only while it is current and a changed policy shows at once. The member's row
is never read: the page learns only that the code is someone's, so it cannot leak a name, a number or a count.

Nothing here is written, and nothing about a code is returned but its state (`InvitationState`): VALID (a member's
code, referrals on), UNKNOWN (no member's code, or `None`: what cannot be a code), PAUSED (referrals switched off, or
no policy configured yet: whether the code is someone's is then ignored, so every link reads alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from loyalty import sql
from loyalty.errors import ProgramNotConfigured
from loyalty.models import Program
from loyalty.program import PROGRAM_ID, current_configuration
from loyalty.rows import InvitationRow


class InvitationState(StrEnum):
    VALID = "valid"  # a member's code, and referrals are on
    UNKNOWN = "unknown"  # nobody's code (or none at all)
    PAUSED = "paused"  # referrals are off (or not configured): no code is looked up


@dataclass(frozen=True)
class Invitation:
    """The landing page's facts. `code` is the canonical code when VALID, else None; the offer fields are the
    policy's (0 and "" while PAUSED without a policy); URLs are "" when not configured."""

    state: InvitationState
    code: str | None
    program_name: str
    currency: str
    currency_exponent: int
    referee_points: int  # the friend's welcome bonus (0: none)
    min_spend: int  # minor units: the first purchase must be at least this much (0: any purchase)
    apply_days: int  # the code can still be attached this many days after joining
    app_store_url: str
    play_store_url: str
    open_app_url: str  # may hold a `{code}` placeholder


_VERSION_AND_HOLDER = sql.rows(
    "invitations.version_and_holder",
    Program,
    InvitationRow,
    'SELECT "p"."version", (SELECT "m"."id" FROM "member" AS "m" WHERE "m"."referral_code" = ?) AS "holder"'
    ' FROM "program" AS "p" WHERE "p"."id" = ?',
)


async def invitation(code: str | None) -> Invitation:
    """The landing page's facts for `code`: canonical (`referrals.normalize_code`'s output) or None for text that
    spells no code. One statement (plus the configuration snapshot's reload after a configuration change).

    Errors: `ProgramNotConfigured` before the program is seeded.
    """
    rows = await sql.fetch_rows(_VERSION_AND_HOLDER, [code, PROGRAM_ID])
    if not rows:
        raise ProgramNotConfigured("the program is not configured: run `klubb seed`")
    version, holder = rows[0]
    configuration = await current_configuration(version=version)
    program, policy = configuration.program, configuration.referral_policy
    if policy is None or not policy.enabled:
        state = InvitationState.PAUSED
    elif code is not None and holder is not None:
        state = InvitationState.VALID
    else:
        state = InvitationState.UNKNOWN
    return Invitation(
        state=state,
        code=code if state is InvitationState.VALID else None,
        program_name=program.name,
        currency=program.currency,
        currency_exponent=program.currency_exponent,
        referee_points=policy.referee_points if policy else 0,
        min_spend=policy.min_spend if policy else 0,
        apply_days=policy.apply_days if policy else 0,
        app_store_url=policy.app_store_url if policy else "",
        play_store_url=policy.play_store_url if policy else "",
        open_app_url=policy.open_app_url if policy else "",
    )
