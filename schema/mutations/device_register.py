"""deviceRegister: the app registers this device's push token (again at every start: it refreshes the device)."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.devices import register_device
from loyalty.errors import DomainError
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.types.device import DEVICE_PLATFORMS, Device, DevicePlatform


@strawberry.enum
class DeviceRegisterErrorCode(Enum):
    INVALID = "INVALID"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
    INVALID_PLATFORM = "INVALID_PLATFORM"
    INVALID_APP_VERSION = "INVALID_APP_VERSION"
    INVALID_LOCALE = "INVALID_LOCALE"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"


@strawberry.type
class DeviceRegisterUserError(UserError):
    code: DeviceRegisterErrorCode


@strawberry.input
class DeviceRegisterInput:
    token: str = strawberry.field(description="The FCM registration token (on iOS too: FCM's, not the APNs token).")
    platform: DevicePlatform
    app_version: str = strawberry.field(description="The app's version, e.g. 2.10.3.")
    locale: str = strawberry.field(description="The device's language, e.g. sv-SE: the pushes' language.")


@strawberry.type
class DeviceRegisterPayload:
    device: Device | None
    user_errors: list[DeviceRegisterUserError]


async def device_register(info: Info, input: DeviceRegisterInput) -> DeviceRegisterPayload:
    member_id = info.context.require_member()
    try:
        device = await register_device(
            member_id, input.token, DEVICE_PLATFORMS.to_domain(input.platform), input.app_version, input.locale
        )
    except DomainError as error:
        return DeviceRegisterPayload(
            device=None, user_errors=[to_user_error(DeviceRegisterUserError, DeviceRegisterErrorCode, error)]
        )
    return DeviceRegisterPayload(device=Device.from_model(device), user_errors=[])
