"""deviceRegister / deviceUnregister: the app's push token per device; bad input is a userError and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loyalty.clock import FrozenClock
from loyalty.models import Device, DevicePlatform, Member

REGISTER = """
mutation($input: DeviceRegisterInput!) {
  deviceRegister(input: $input) {
    device { platform appVersion locale registeredAt lastSeenAt }
    userErrors { __typename code message field }
  }
}
"""
UNREGISTER = """
mutation($input: DeviceUnregisterInput!) {
  deviceUnregister(input: $input) { unregistered userErrors { __typename code message field } }
}
"""
TOKEN = "fcm-token:APA91b" + "x" * 140


def _input(**changes: Any) -> dict[str, Any]:
    return {"input": {"token": TOKEN, "platform": "IOS", "appVersion": "2.10.3", "locale": "sv_SE", **changes}}


async def _devices() -> list[tuple[int, str, DevicePlatform, str, str]]:
    return list(
        await Device.all().order_by("id").values_list("member_id", "token", "platform", "app_version", "locale")
    )


async def test_a_device_registers_and_a_second_registration_refreshes_it(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given a registration
    first = await as_member(anna).execute(REGISTER, _input())
    registered_at = clock.now().isoformat()

    # when the app starts again a day later, updated, in another language
    clock.advance(timedelta(days=1))
    again = await as_member(anna).execute(REGISTER, _input(appVersion="2.11.0", locale="en"))

    # then one device, refreshed
    assert first["data"]["deviceRegister"] == {
        "device": {
            "platform": "IOS",
            "appVersion": "2.10.3",
            "locale": "sv-SE",
            "registeredAt": registered_at,
            "lastSeenAt": registered_at,
        },
        "userErrors": [],
    }
    assert again["data"]["deviceRegister"]["device"] == {
        "platform": "IOS",
        "appVersion": "2.11.0",
        "locale": "en",
        "registeredAt": registered_at,
        "lastSeenAt": clock.now().isoformat(),
    }
    assert await _devices() == [(anna.id, TOKEN, DevicePlatform.IOS, "2.11.0", "en")]


async def test_a_token_registered_by_another_member_moves_to_them(
    anna: Member, bo: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given Anna's device (and a second one of hers)
    await as_member(anna).execute(REGISTER, _input())
    await as_member(anna).execute(REGISTER, _input(token=TOKEN + "2", platform="ANDROID"))
    clock.advance(timedelta(hours=1))

    # when Bo signs in on Anna's first device and registers its token
    result = await as_member(bo).execute(REGISTER, _input(platform="IOS"))

    # then the token is Bo's alone, a new device since now; Anna keeps her other one
    assert result["data"]["deviceRegister"]["device"]["registeredAt"] == clock.now().isoformat()
    assert sorted(await _devices()) == sorted(
        [
            (anna.id, TOKEN + "2", DevicePlatform.ANDROID, "2.10.3", "sv-SE"),
            (bo.id, TOKEN, DevicePlatform.IOS, "2.10.3", "sv-SE"),
        ]
    )


@pytest.mark.parametrize(
    ("changes", "code", "field", "message"),
    [
        (
            {"token": "x" * 31},
            "INVALID_TOKEN",
            "token",
            "token must be 32 to 512 letters, digits or - _ : . characters",
        ),
        (
            {"token": "x" * 513},
            "INVALID_TOKEN",
            "token",
            "token must be 32 to 512 letters, digits or - _ : . characters",
        ),
        (
            {"token": TOKEN + "\x00"},
            "INVALID_TOKEN",
            "token",
            "token must be 32 to 512 letters, digits or - _ : . characters",
        ),
        (
            {"token": TOKEN + " a"},
            "INVALID_TOKEN",
            "token",
            "token must be 32 to 512 letters, digits or - _ : . characters",
        ),
        (
            {"token": TOKEN + "\t"},
            "INVALID_TOKEN",
            "token",
            "token must be 32 to 512 letters, digits or - _ : . characters",
        ),
        (
            {"token": "é" * 40},
            "INVALID_TOKEN",
            "token",
            "token must be 32 to 512 letters, digits or - _ : . characters",
        ),
        (
            {"appVersion": ""},
            "INVALID_APP_VERSION",
            "appVersion",
            "app version must be a version number such as 2.10.3 (at most 32 characters)",
        ),
        (
            {"appVersion": "2.10.3\x00"},
            "INVALID_APP_VERSION",
            "appVersion",
            "app version must be a version number such as 2.10.3 (at most 32 characters)",
        ),
        (
            {"appVersion": "1." + "1" * 40},
            "INVALID_APP_VERSION",
            "appVersion",
            "app version must be a version number such as 2.10.3 (at most 32 characters)",
        ),
        (
            {"locale": "swedish-please"},
            "INVALID_LOCALE",
            "locale",
            "locale must be a language tag such as sv or sv-SE (at most 16 characters)",
        ),
        (
            {"locale": ""},
            "INVALID_LOCALE",
            "locale",
            "locale must be a language tag such as sv or sv-SE (at most 16 characters)",
        ),
        (
            {"locale": "sv\x00"},
            "INVALID_LOCALE",
            "locale",
            "locale must be a language tag such as sv or sv-SE (at most 16 characters)",
        ),
    ],
)
async def test_bad_device_input_is_a_user_error_and_writes_nothing(
    anna: Member, as_member: Any, changes: dict[str, Any], code: str, field: str, message: str
) -> None:
    # when the app sends a bad token, version or locale
    result = await as_member(anna).execute(REGISTER, _input(**changes))

    # then a precise userError, and no device
    assert result == {
        "data": {
            "deviceRegister": {
                "device": None,
                "userErrors": [
                    {
                        "__typename": "DeviceRegisterUserError",
                        "code": code,
                        "message": message,
                        "field": ["input", field],
                    }
                ],
            }
        }
    }
    assert await _devices() == []


async def test_a_platform_outside_the_enum_is_refused_before_the_resolver(anna: Member, as_member: Any) -> None:
    # when the platform is not one of the enum's values
    response = await as_member(anna).post(REGISTER, _input(platform="SYMBIAN"))

    # then GraphQL refuses the variable (nothing runs) and no device is written
    body = response.json()
    assert (body.get("data"), [e["extensions"]["code"] for e in body["errors"]]) == (None, ["BAD_USER_INPUT"])
    assert await _devices() == []


async def test_registering_needs_a_signed_in_member(as_member: Any) -> None:
    result = await as_member(None).execute(REGISTER, _input())

    assert (result["data"], result["errors"][0]["extensions"]["code"]) == (None, "UNAUTHENTICATED")
    assert await _devices() == []


async def test_unregistering_forgets_the_device(anna: Member, as_member: Any) -> None:
    # given Anna's device
    await as_member(anna).execute(REGISTER, _input())

    # when she signs out, twice
    first = await as_member(anna).execute(UNREGISTER, {"input": {"token": TOKEN}})
    second = await as_member(anna).execute(UNREGISTER, {"input": {"token": TOKEN}})

    # then it is gone; the second time there is nothing to forget
    assert first["data"]["deviceUnregister"] == {"unregistered": True, "userErrors": []}
    assert second["data"]["deviceUnregister"] == {
        "unregistered": False,
        "userErrors": [
            {
                "__typename": "DeviceUnregisterUserError",
                "code": "DEVICE_NOT_FOUND",
                "message": "no such device",
                "field": ["input", "token"],
            }
        ],
    }
    assert await _devices() == []


async def test_another_members_token_answers_like_a_missing_one(anna: Member, bo: Member, as_member: Any) -> None:
    # given Anna's device
    await as_member(anna).execute(REGISTER, _input())

    # when Bo tries to unregister her token, and one nobody has
    theirs = await as_member(bo).execute(UNREGISTER, {"input": {"token": TOKEN}})
    nobodys = await as_member(bo).execute(UNREGISTER, {"input": {"token": TOKEN + "nobody"}})

    # then the same answer, and Anna keeps her device
    assert theirs == nobodys
    assert theirs["data"]["deviceUnregister"]["userErrors"][0]["code"] == "DEVICE_NOT_FOUND"
    assert await _devices() == [(anna.id, TOKEN, DevicePlatform.IOS, "2.10.3", "sv-SE")]


async def test_unregistering_a_malformed_token_is_a_user_error(anna: Member, as_member: Any) -> None:
    result = await as_member(anna).execute(UNREGISTER, {"input": {"token": "\x00" * 40}})

    assert result["data"]["deviceUnregister"]["userErrors"] == [
        {
            "__typename": "DeviceUnregisterUserError",
            "code": "INVALID_TOKEN",
            "message": "token must be 32 to 512 letters, digits or - _ : . characters",
            "field": ["input", "token"],
        }
    ]
