"""`me.referral`: the member's referral code, its shareable link and how their referrals went."""

from __future__ import annotations

import strawberry

from loyalty.referrals import ReferralSummary


@strawberry.type(description="Invite friends: your code, the link to share, and what came of it.")
class MemberReferral:
    code: str = strawberry.field(description="Your referral code: eight characters without look-alikes.")
    link: str = strawberry.field(description="The landing page to share (`/r/<code>`).")
    invited_count: int = strawberry.field(description="Friends who used your code.")
    converted_count: int = strawberry.field(description="Of them, friends whose first qualifying purchase counted.")
    points_earned: int = strawberry.field(
        description="Your bonuses from those referrals (pending until each purchase's return window ends)."
    )

    @classmethod
    def from_domain(cls, summary: ReferralSummary, public_url: str) -> MemberReferral:
        return cls(
            code=summary.code,
            link=f"{public_url}/r/{summary.code}",
            invited_count=summary.invited,
            converted_count=summary.converted,
            points_earned=summary.points_earned,
        )
