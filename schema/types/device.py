"""The member's devices as the app registers them for pushes."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty import models
from schema.types.enum_map import EnumMap


@strawberry.enum(name="DevicePlatform")
class DevicePlatform(Enum):
    IOS = "IOS"
    ANDROID = "ANDROID"
    WEB = "WEB"


DEVICE_PLATFORMS = EnumMap(
    models.DevicePlatform,
    DevicePlatform,
    {
        models.DevicePlatform.IOS: DevicePlatform.IOS,
        models.DevicePlatform.ANDROID: DevicePlatform.ANDROID,
        models.DevicePlatform.WEB: DevicePlatform.WEB,
    },
)


@strawberry.type(name="Device", description="This device, as registered for pushes.")
class Device:
    platform: DevicePlatform
    app_version: str
    locale: str = strawberry.field(description="As stored: sv_SE becomes sv-SE.")
    registered_at: datetime
    last_seen_at: datetime

    @classmethod
    def from_model(cls, device: models.Device) -> Device:
        return cls(
            platform=DEVICE_PLATFORMS.to_api(device.platform),
            app_version=device.app_version,
            locale=device.locale,
            registered_at=device.created_at,
            last_seen_at=device.last_seen_at,
        )
