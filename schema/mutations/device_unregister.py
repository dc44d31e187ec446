"""deviceUnregister: the app forgets this device's push token (signing out): no more pushes to it."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.devices import unregister_device
from loyalty.errors import DomainError
from schema.context import Info
from schema.errors import UserError, to_user_error


@strawberry.enum
class DeviceUnregisterErrorCode(Enum):
    INVALID = "INVALID"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"


@strawberry.type
class DeviceUnregisterUserError(UserError):
    code: DeviceUnregisterErrorCode


@strawberry.input
class DeviceUnregisterInput:
    token: str


@strawberry.type
class DeviceUnregisterPayload:
    unregistered: bool = strawberry.field(description="True once the token is gone.")
    user_errors: list[DeviceUnregisterUserError]


async def device_unregister(info: Info, input: DeviceUnregisterInput) -> DeviceUnregisterPayload:
    member_id = info.context.require_member()
    try:
        await unregister_device(member_id, input.token)
    except DomainError as error:
        return DeviceUnregisterPayload(
            unregistered=False,
            user_errors=[to_user_error(DeviceUnregisterUserError, DeviceUnregisterErrorCode, error)],
        )
    return DeviceUnregisterPayload(unregistered=True, user_errors=[])
