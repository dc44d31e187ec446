"""A member's progress on a stamp card, as the app shows it."""

from __future__ import annotations

import strawberry

from loyalty import stamps as loyalty_stamps  # not `stamps`: the field `stamps` shadows that in the class body


@strawberry.type(description="Collect `stampsRequired` stamps for a voucher; surplus stamps carry over.")
class StampCardProgress:
    name: str
    description: str
    stamps: int = strawberry.field(description="Stamps on the card now.")
    stamps_required: int
    completed: int = strawberry.field(description="How many times you have filled this card.")

    @classmethod
    def from_domain(cls, progress: loyalty_stamps.StampCardProgress) -> StampCardProgress:
        return cls(
            name=progress.name,
            description=progress.description,
            stamps=progress.stamps,
            stamps_required=progress.stamps_required,
            completed=progress.completed,
        )
