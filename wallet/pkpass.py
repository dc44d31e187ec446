"""The member card as an Apple Wallet store card: `pass.json`, images, localisations, manifest and signature.

A `.pkpass` is a zip of
- `pass.json` (formatVersion 1; passTypeIdentifier and teamIdentifier from the signing certificate; the member's name,
  points, tier and progress, points expiring soon, the barcode with the member number in the program's format; back
  fields with the program's terms; `changeMessage`s for points and tier),
- the images (`icon`, `logo`, `strip`, each @2x and @3x: the program's branding directory, else the shipped defaults
  in `wallet/images/`),
- `<lang>.lproj/pass.strings` for each language the program lists (English and Swedish shipped): labels and change
  messages by key, and this member's progress line,
- `manifest.json`: the SHA-1 of every file above,
- `signature`: a detached CMS (PKCS #7) signature of `manifest.json`, DER, binary mode, with the signing time and the
  WWDR intermediate embedded, made with `cryptography`.

Everything is built from values (`PassContent`, `PassDesign`): no database access here.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from loyalty.models import Program, WalletBarcode, WalletDesign
from loyalty.wallet import PassContent
from wallet.credentials import AppleCredentials

IMAGES_DIR = Path(__file__).parent / "images"
IMAGE_NAMES = tuple(f"{name}{scale}.png" for name in ("icon", "logo", "strip") for scale in ("", "@2x", "@3x"))
BARCODE_FORMATS = {
    WalletBarcode.QR: "PKBarcodeFormatQR",
    WalletBarcode.PDF417: "PKBarcodeFormatPDF417",
    WalletBarcode.AZTEC: "PKBarcodeFormatAztec",
    WalletBarcode.CODE128: "PKBarcodeFormatCode128",  # iOS 9+: not allowed in the legacy `barcode` key
}
MIME_TYPE = "application/vnd.apple.pkpass"

# The labels and change messages by key, per language (`<lang>.lproj/pass.strings`).
STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "MEMBER": "Member",
        "POINTS": "Points",
        "TIER": "Tier",
        "NEXT_TIER": "Next tier",
        "TOP_TIER": "You are at the top tier",
        "EXPIRING_SOON": "Expiring soon",
        "EXPIRES": "Expires",
        "PENDING": "Pending points",
        "MEMBER_NUMBER": "Member number",
        "TERMS": "Terms",
        "POINTS_CHANGED": "You now have %@ points",
        "TIER_CHANGED": "You are now %@",
        "EXPIRING_CHANGED": "%@ points expire soon",
    },
    "sv": {
        "MEMBER": "Medlem",
        "POINTS": "Poäng",
        "TIER": "Nivå",
        "NEXT_TIER": "Nästa nivå",
        "TOP_TIER": "Du är på högsta nivån",
        "EXPIRING_SOON": "Går snart ut",
        "EXPIRES": "Går ut",
        "PENDING": "Väntande poäng",
        "MEMBER_NUMBER": "Medlemsnummer",
        "TERMS": "Villkor",
        "POINTS_CHANGED": "Du har nu %@ poäng",
        "TIER_CHANGED": "Du är nu %@",
        "EXPIRING_CHANGED": "%@ poäng går snart ut",
    },
}
_PROGRESS = {"en": "{points} points to {tier}", "sv": "{points} poäng kvar till {tier}"}


@dataclass(frozen=True)
class PassDesign:
    organization_name: str
    description: str
    logo_text: str
    background_color: str
    foreground_color: str
    label_color: str
    barcode_format: WalletBarcode
    terms: str
    languages: tuple[str, ...]

    @classmethod
    def of(cls, design: WalletDesign, program: Program) -> PassDesign:
        """The program's design, its empty texts filled from the program's name."""
        return cls(
            organization_name=design.organization_name or program.name,
            description=design.description or f"{program.name} member card",
            logo_text=design.logo_text or program.name,
            background_color=design.background_color,
            foreground_color=design.foreground_color,
            label_color=design.label_color,
            barcode_format=WalletBarcode(design.barcode_format),
            terms=design.terms,
            languages=tuple(lang for lang in design.languages if lang in STRINGS) or ("en",),
        )


@dataclass(frozen=True)
class PassIdentity:
    serial_number: str
    authentication_token: str
    web_service_url: str


def _barcode(content: PassContent, design: PassDesign) -> dict[str, str]:
    return {
        "format": BARCODE_FORMATS[design.barcode_format],
        "message": content.member_number,
        "messageEncoding": "iso-8859-1",
        "altText": content.member_number,
    }


def pass_json(
    content: PassContent, design: PassDesign, identity: PassIdentity, credentials: AppleCredentials
) -> dict[str, Any]:
    """The pass's `pass.json` (labels are keys of the `.lproj` strings)."""
    barcode = _barcode(content, design)
    secondary: list[dict[str, Any]] = [
        {"key": "tier", "label": "TIER", "value": content.tier_name, "changeMessage": "TIER_CHANGED"},
        {"key": "progress", "label": "NEXT_TIER", "value": "PROGRESS" if content.next_tier_name else "TOP_TIER"},
    ]
    auxiliary: list[dict[str, Any]] = []
    if content.expiring_points and content.expiring_at is not None:
        auxiliary = [
            {
                "key": "expiring",
                "label": "EXPIRING_SOON",
                "value": content.expiring_points,
                "numberStyle": "PKNumberStyleDecimal",
                "changeMessage": "EXPIRING_CHANGED",
            },
            {
                "key": "expires",
                "label": "EXPIRES",
                "value": content.expiring_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "dateStyle": "PKDateStyleMedium",
                "timeStyle": "PKDateStyleNone",
            },
        ]
    back: list[dict[str, Any]] = [
        {"key": "member_number", "label": "MEMBER_NUMBER", "value": content.member_number},
        {"key": "pending", "label": "PENDING", "value": content.points_pending, "numberStyle": "PKNumberStyleDecimal"},
    ]
    if design.terms:
        back.append({"key": "terms", "label": "TERMS", "value": design.terms})
    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": credentials.pass_type_id,
        "teamIdentifier": credentials.team_id,
        "serialNumber": identity.serial_number,
        "authenticationToken": identity.authentication_token,
        "webServiceURL": identity.web_service_url,
        "organizationName": design.organization_name,
        "description": design.description,
        "logoText": design.logo_text,
        "backgroundColor": design.background_color,
        "foregroundColor": design.foreground_color,
        "labelColor": design.label_color,
        "barcodes": [barcode],
        "storeCard": {
            "headerFields": [
                {
                    "key": "points",
                    "label": "POINTS",
                    "value": content.points_available,
                    "numberStyle": "PKNumberStyleDecimal",
                    "changeMessage": "POINTS_CHANGED",
                }
            ],
            "primaryFields": [
                {"key": "name", "label": "MEMBER", "value": content.display_name or content.member_number}
            ],
            "secondaryFields": secondary,
            "auxiliaryFields": auxiliary,
            "backFields": back,
        },
    }
    if design.barcode_format is not WalletBarcode.CODE128:
        document["barcode"] = barcode  # iOS 8 and earlier read only this one
    return document


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def pass_strings(content: PassContent, language: str) -> bytes:
    """`<language>.lproj/pass.strings`: the labels, change messages and this member's progress line (UTF-8)."""
    strings = dict(STRINGS[language])
    if content.next_tier_name and content.remaining_to_next is not None:
        strings["PROGRESS"] = _PROGRESS[language].format(points=content.remaining_to_next, tier=content.next_tier_name)
    return "".join(f'"{_escape(key)}" = "{_escape(value)}";\n' for key, value in strings.items()).encode()


def images(branding: Path | None = None) -> dict[str, bytes]:
    """The pass images: each from `branding` when it has it, else the shipped default."""
    found = {}
    for name in IMAGE_NAMES:
        custom = branding / name if branding is not None else None
        found[name] = (custom if custom is not None and custom.is_file() else IMAGES_DIR / name).read_bytes()
    return found


def manifest(files: dict[str, bytes]) -> bytes:
    """`manifest.json`: every file's SHA-1 (hex), by its path in the archive."""
    return orjson.dumps(
        {name: hashlib.sha1(data).hexdigest() for name, data in sorted(files.items())},  # noqa: S324 -- Apple's format
        option=orjson.OPT_INDENT_2,
    )


def sign(manifest_bytes: bytes, credentials: AppleCredentials) -> bytes:
    """The detached CMS signature of `manifest_bytes`: DER, binary, signing time, WWDR certificate embedded."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest_bytes)
        .add_signer(credentials.certificate, credentials.private_key, hashes.SHA256())
        .add_certificate(credentials.wwdr)
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


def build_pass(
    content: PassContent,
    design: PassDesign,
    identity: PassIdentity,
    credentials: AppleCredentials,
    *,
    image_files: dict[str, bytes] | None = None,
    modified: datetime | None = None,
) -> bytes:
    """The signed `.pkpass` archive (its entries dated `modified`, so one content builds to one archive's files)."""
    files: dict[str, bytes] = {
        "pass.json": orjson.dumps(pass_json(content, design, identity, credentials)),
        **(image_files if image_files is not None else images()),
    }
    for language in design.languages:
        files[f"{language}.lproj/pass.strings"] = pass_strings(content, language)
    manifest_bytes = manifest(files)
    stamp = (modified or datetime(2020, 1, 1, tzinfo=UTC)).astimezone(UTC)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [
            *files.items(),
            ("manifest.json", manifest_bytes),
            ("signature", sign(manifest_bytes, credentials)),
        ]:
            archive.writestr(zipfile.ZipInfo(name, date_time=date_time), data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
