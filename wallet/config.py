"""What the wallet package needs from the configuration, built by the composition root (`Settings.wallet_config()`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppleWalletConfig:
    # Signing credentials (PEM files); all three unset: a development CA and pass certificate in `dev_directory`.
    certificate_file: str | None
    key_file: str | None
    wwdr_file: str | None
    key_password: str | None
    dev_directory: str
    # Secret (≥ 32 bytes) the passes' web-service tokens and the download links are derived from.
    secret: bytes
    # The PassKit web service's base URL as devices reach it (`<public url>/passkit`).
    web_service_url: str
    # APNs (https://api.push.apple.com); None: pushes are logged, not sent (development without credentials).
    apns_url: str | None
    apns_ca_file: str | None = None  # CA bundle for the APNs server (a local fake); None: the system's
    branding_directory: str | None = None  # images overriding the shipped defaults
    link_seconds: int = 300  # lifetime of a pass download link
    apns_timeout_seconds: float = 10.0
    apns_retry_hours: int = 24
    lease_seconds: float = 60.0

    @property
    def has_credentials(self) -> bool:
        return bool(self.certificate_file and self.key_file and self.wwdr_file)
