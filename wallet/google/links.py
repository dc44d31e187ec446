"""`me.wallet.googleSaveUrl`: the member's "save to Google Wallet" link.

The object is inlined in the JWT when the link stays short enough; otherwise it is inserted over the REST API first
(or brought up to date if it exists) and the link names it by id. The programme's class is inserted once per
process before the first link (Google needs it to exist). None when Google cannot be reached: the app hides the
button rather than showing a link that fails.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise.transactions import in_transaction

from loyalty.models import GoogleWalletObject, Member
from loyalty.program import cached_program
from wallet.google import objects, save_link
from wallet.google.client import GoogleWalletClient, GoogleWalletRejected, GoogleWalletUnavailable
from wallet.google.config import GoogleWalletConfig
from wallet.google.sync import card_content, content_digest, ensure_class, ensure_object, notable_digest

log = logging.getLogger("klubb.wallet.google")


async def google_save_url(
    config: GoogleWalletConfig, client: GoogleWalletClient, member_id: int, now: datetime
) -> str | None:
    """The member's save link at `now` (None for an unknown member or while Google is unreachable)."""
    member = await Member.get_or_none(id=member_id)
    if member is None:
        return None
    program = await cached_program()
    content = await card_content(member, program, now)
    row = await ensure_object(config, member, now)
    resource = objects.loyalty_object(config, content)
    try:
        await ensure_class(config, client, program)
        url = save_link.inline_save_url(config, resource, now)
        if url is not None:
            return url
        if not await client.insert_object(resource):  # already there: bring it up to date
            await client.patch_object(row.object_id, objects.object_patch(content, notify=False))
    except (GoogleWalletUnavailable, GoogleWalletRejected) as error:
        log.warning("Google Wallet save link for member %s not made: %s", member_id, error)
        return None
    async with in_transaction() as conn:
        await (
            GoogleWalletObject.filter(id=row.id)
            .using_db(conn)
            .update(inserted=True, content_digest=content_digest(content), notable_digest=notable_digest(content))
        )
    return save_link.save_url(config, save_link.link_payload_by_id(row.object_id, config.class_id), now)
