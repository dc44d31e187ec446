"""The wallet domain: passes, tokens, registrations, install/remove events and rewards, update tags, card in wallet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from loyalty import events, wallet
from loyalty.clock import FrozenClock
from loyalty.errors import InvalidInput
from loyalty.models import (
    EngagementRule,
    Member,
    OutboxEvent,
    Program,
    WalletBarcode,
    WalletDesign,
    WalletPass,
    WalletPlatform,
    WalletPush,
    WalletRegistration,
)
from tests.loyalty.ledger_helpers import balances, give_available, new_member

TOKEN = "t" * 24
PUSH = "ab" * 32


async def _apple_pass(uid: str = "uid-wallet", token: str = TOKEN) -> tuple[Member, WalletPass]:
    member = await new_member(uid)
    return member, await wallet.ensure_pass(member.id, WalletPlatform.APPLE, auth_token=token)


async def test_a_pass_is_made_once_per_member_and_platform(program: Program) -> None:
    # given a member with an Apple pass
    member, first = await _apple_pass()

    # when it is asked for again, and a Google pass too
    again = await wallet.ensure_pass(member.id, WalletPlatform.APPLE, auth_token=TOKEN)
    google = await wallet.ensure_pass(member.id, WalletPlatform.GOOGLE)

    # then the Apple pass is the same one, its token stored hashed; the Google one has none
    assert again.id == first.id
    assert again.serial_number == first.serial_number
    assert len(first.serial_number) == 32
    assert first.auth_token_hash == wallet.token_hash(TOKEN) != TOKEN
    assert (google.platform, google.auth_token_hash) == (WalletPlatform.GOOGLE, "")
    assert google.serial_number != first.serial_number
    assert await WalletPass.all().count() == 2


async def test_a_short_token_is_refused(program: Program) -> None:
    member = await new_member("uid-wallet")
    with pytest.raises(wallet.InvalidRegistration) as refused:
        await wallet.ensure_pass(member.id, WalletPlatform.APPLE, auth_token="x" * 15)
    assert refused.value.code == "INVALID_REGISTRATION"
    assert await WalletPass.all().count() == 0


async def test_a_wrong_token_and_an_unknown_serial_answer_alike(program: Program) -> None:
    # given two passes
    _, mine = await _apple_pass()
    _, theirs = await _apple_pass("uid-other", token="o" * 24)

    # then only the pass's own token opens it
    opened = await wallet.authenticate_pass(mine.serial_number, TOKEN)
    assert opened is not None
    assert opened.id == mine.id
    assert await wallet.authenticate_pass(mine.serial_number, "o" * 24) is None  # the other pass's token
    assert await wallet.authenticate_pass(theirs.serial_number, TOKEN) is None
    assert await wallet.authenticate_pass("no-such-serial", TOKEN) is None
    assert await wallet.authenticate_pass("", TOKEN) is None
    assert await wallet.authenticate_pass("x" * 65, TOKEN) is None
    assert await wallet.authenticate_pass(mine.serial_number, "") is None
    # a Google pass has no web-service token: nothing opens it
    member = await Member.get(id=mine.member_id)
    google = await wallet.ensure_pass(member.id, WalletPlatform.GOOGLE)
    assert await wallet.authenticate_pass(google.serial_number, "", WalletPlatform.GOOGLE) is None


async def test_the_first_device_installs_the_pass_and_rewards_once(program: Program, clock: FrozenClock) -> None:
    # given a program rewarding a card added to a wallet
    await EngagementRule.create(event_type=wallet.ADDED_ENGAGEMENT, points=50)
    member, apple = await _apple_pass()

    # when two devices register, one twice
    assert await wallet.register_device(apple, "device-1", PUSH) is True
    assert await wallet.register_device(apple, "device-1", "CD" * 32) is False
    assert await wallet.register_device(apple, "device-2", PUSH) is True

    # then the pass is installed once, rewarded once, and the first device took the new push token
    stored = await WalletPass.get(id=apple.id)
    assert (stored.installed, stored.installed_at, stored.removed_at) == (True, clock.now(), None)
    assert await balances(member.id) == (50, 0, 50)
    added = await OutboxEvent.filter(type=events.WALLET_ADDED).values_list("member_id", "payload")
    assert added == [
        (
            member.id,
            {"type": "wallet.added", "member_id": member.id, "platform": "apple", "serial_number": apple.serial_number},
        )
    ]
    tokens = await WalletRegistration.all().order_by("device_library_id").values_list("device_library_id", "push_token")
    assert tokens == [("device-1", "cd" * 32), ("device-2", PUSH)]
    assert await wallet.card_in_wallet(member.id) == wallet.CardInWallet(apple=True, google=False)

    # when the last device leaves, and the pass is added again later
    assert await wallet.unregister_device(apple, "device-1") is True
    assert await wallet.unregister_device(apple, "device-1") is False
    assert (await WalletPass.get(id=apple.id)).installed is True
    clock.advance(timedelta(days=1))
    assert await wallet.unregister_device(apple, "device-2") is True
    removed = await WalletPass.get(id=apple.id)
    assert (removed.installed, removed.removed_at) == (False, clock.now())
    assert await wallet.card_in_wallet(member.id) == wallet.CardInWallet(apple=False, google=False)
    await wallet.register_device(apple, "device-3", PUSH)

    # then the second install is an event but no second reward
    assert await OutboxEvent.filter(type=events.WALLET_ADDED).count() == 2
    assert await OutboxEvent.filter(type=events.WALLET_REMOVED).count() == 1
    assert await balances(member.id) == (50, 0, 50)


async def test_no_rule_no_reward(program: Program) -> None:
    member, apple = await _apple_pass()
    await wallet.register_device(apple, "device-1", PUSH)
    assert await balances(member.id) == (0, 0, 0)
    assert await wallet.set_installed(await wallet.ensure_pass(member.id, WalletPlatform.GOOGLE), True) is True
    assert await wallet.cards_in_wallet([member.id, 999]) == {
        member.id: wallet.CardInWallet(apple=True, google=True),
        999: wallet.CardInWallet(apple=False, google=False),
    }


@pytest.mark.parametrize(
    ("device", "push_token", "field"),
    [
        ("", PUSH, "device"),
        ("d" * 129, PUSH, "device"),
        ("dev/ice", PUSH, "device"),
        ("dévice", PUSH, "device"),
        ("dev\x00", PUSH, "device"),
        ("device-1", "", "push_token"),
        ("device-1", "zz" * 32, "push_token"),
        ("device-1", "a" * 201, "push_token"),
        ("device-1", 12345, "push_token"),
        ("device-1", None, "push_token"),
    ],
)
async def test_malformed_registrations_write_nothing(
    program: Program, device: str, push_token: object, field: str
) -> None:
    _, apple = await _apple_pass()
    with pytest.raises(wallet.InvalidRegistration) as refused:
        await wallet.register_device(apple, device, push_token)
    assert (refused.value.code, refused.value.field) == ("INVALID_REGISTRATION", field)
    assert await WalletRegistration.all().count() == 0
    assert await OutboxEvent.filter(type=events.WALLET_ADDED).count() == 0


async def test_content_changes_move_the_tag_and_owe_one_push_per_device(program: Program, clock: FrozenClock) -> None:
    # given a pass on two devices (two passes share one device's push token)
    member, apple = await _apple_pass()
    await wallet.register_device(apple, "device-1", PUSH)
    await wallet.register_device(apple, "device-2", "cd" * 32)
    async with in_transaction() as conn:
        first = await wallet.refresh_passes(conn, [member.id], clock.now(), platform=WalletPlatform.APPLE)
    assert [p.id for p in first] == [apple.id]  # a new pass has no digest yet
    tag = first[0].update_tag
    assert await wallet.serials_updated_since("device-1", None) == ([apple.serial_number], tag)
    assert await wallet.serials_updated_since("device-1", tag) is None
    assert await wallet.serials_updated_since("unknown-device", None) is None

    # when nothing it shows changed
    async with in_transaction() as conn:
        assert await wallet.refresh_passes(conn, [member.id], clock.now(), platform=WalletPlatform.APPLE) == []

    # when the points change
    clock.advance(timedelta(seconds=1))
    await give_available(member.id, 120)
    async with in_transaction() as conn:
        changed = await wallet.refresh_passes(conn, [member.id, 12345], clock.now(), platform=WalletPlatform.APPLE)
        assert await wallet.request_pushes(conn, [p.id for p in changed], clock.now()) == 2
        assert await wallet.request_pushes(conn, [p.id for p in changed], clock.now()) == 2

    # then the tag moved and each device is owed pushes, coalesced on one row per token
    stored = await WalletPass.get(id=apple.id)
    assert stored.update_tag > tag
    assert stored.last_updated == clock.now()
    assert await wallet.serials_updated_since("device-2", tag) == ([apple.serial_number], stored.update_tag)
    owed = await WalletPush.all().order_by("push_token").values_list("push_token", "wanted", "sent")
    assert owed == [(PUSH, 2, 0), ("cd" * 32, 2, 0)]

    content = await wallet.pass_content(await Member.get(id=member.id), program, clock.now())
    assert (content.points_available, content.tier_name, content.display_name) == (120, "Member", "")


async def test_a_dead_push_token_forgets_its_registrations(program: Program) -> None:
    member, apple = await _apple_pass()
    await wallet.register_device(apple, "device-1", PUSH)
    assert await wallet.forget_push_token(PUSH) == 1
    assert await WalletRegistration.all().count() == 0
    assert (await WalletPass.get(id=apple.id)).installed is False
    assert await wallet.card_in_wallet(member.id) == wallet.CardInWallet(apple=False, google=False)


async def test_the_design_defaults_and_is_configured_from_the_program_file(program: Program) -> None:
    # given no [wallet] section: the defaults
    default = await wallet.wallet_design()
    assert (default.barcode_format, default.languages, default.organization_name) == (
        WalletBarcode.QR,
        ["en", "sv"],
        "",
    )

    # when a section is applied (twice: it replaces)
    await wallet.apply_wallet_design({"barcode_format": "aztec", "background_color": "rgb(1,2, 3)"})
    design = await wallet.apply_wallet_design(
        {
            "barcode_format": "pdf417",
            "logo_text": "Club",
            "terms": "Line one.\nLine two.",
            "languages": ["en", "sv", "en"],
        }
    )

    # then
    assert (design.barcode_format, design.logo_text, design.terms) == (
        WalletBarcode.PDF417,
        "Club",
        "Line one.\nLine two.",
    )
    assert (design.background_color, design.languages) == ("rgb(1, 2, 3)", ["en", "sv"])
    assert await WalletDesign.all().count() == 1


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"barcode_format": "ean13"}, "barcode_format"),
        ({"background_color": "#ff0000"}, "background_color"),
        ({"label_color": "rgb(256, 0, 0)"}, "label_color"),
        ({"foreground_color": "rgb(1, 2)"}, "foreground_color"),
        ({"languages": ["sv"]}, "languages"),
        ({"languages": ["en", "xx"]}, "languages"),
        ({"languages": "en"}, "languages"),
        ({"logo_text": "x" * 101}, "logo_text"),
        ({"organization_name": "bad\x00name"}, "organization_name"),
    ],
)
async def test_a_bad_design_is_refused(program: Program, section: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await wallet.apply_wallet_design(section)
    assert refused.value.field == field
    assert await WalletDesign.all().count() == 0
