"""The store card .pkpass: its pass.json, images, localisations, manifest and signature (openssl and Python)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from loyalty.models import WalletBarcode
from loyalty.wallet import PassContent
from tests.wallet.verify import check_pkpass
from wallet.credentials import AppleCredentials
from wallet.pkpass import IMAGE_NAMES, IMAGES_DIR, PassDesign, PassIdentity, build_pass, images

CONTENT = PassContent(
    member_id=7,
    member_number="1000000017",
    display_name='Anna "A" Andersson',
    points_available=1234,
    points_pending=56,
    tier_name="Silver",
    next_tier_name="Gold",
    remaining_to_next=766,
    progress=0.49,
    expiring_points=30,
    expiring_at=datetime(2026, 4, 1, 0, 0, tzinfo=UTC),
)
DESIGN = PassDesign(
    organization_name="Test Club",
    description="Test Club member card",
    logo_text="Club",
    background_color="rgb(1, 2, 3)",
    foreground_color="rgb(255, 255, 255)",
    label_color="rgb(200, 200, 200)",
    barcode_format=WalletBarcode.QR,
    terms="Points expire after a year.\nThe club's terms apply.",
    languages=("en", "sv"),
)
IDENTITY = PassIdentity("serial-123", "t" * 32, "https://klubb.example.com/passkit")


def test_a_pass_verifies_and_shows_the_member(
    credentials: AppleCredentials, wallet_dev_directory: Path, tmp_path: Path
) -> None:
    # when a pass is built and signed
    data = build_pass(CONTENT, DESIGN, IDENTITY, credentials)

    # then it verifies with openssl and in Python, and its files are these
    checked = check_pkpass(data, wallet_dev_directory / "root-ca.pem", tmp_path)
    assert sorted(checked.files) == sorted(
        [*IMAGE_NAMES, "pass.json", "manifest.json", "signature", "en.lproj/pass.strings", "sv.lproj/pass.strings"]
    )
    assert (
        checked.signer_subject
        == "O=klubb development,OU=KLUBBDEV00,CN=Pass Type ID: pass.dev.klubb.member,UID=pass.dev.klubb.member"
    )
    document = checked.pass_json
    assert {k: v for k, v in document.items() if k not in ("storeCard", "barcode", "barcodes")} == {
        "formatVersion": 1,
        "passTypeIdentifier": "pass.dev.klubb.member",
        "teamIdentifier": "KLUBBDEV00",
        "serialNumber": "serial-123",
        "authenticationToken": "t" * 32,
        "webServiceURL": "https://klubb.example.com/passkit",
        "organizationName": "Test Club",
        "description": "Test Club member card",
        "logoText": "Club",
        "backgroundColor": "rgb(1, 2, 3)",
        "foregroundColor": "rgb(255, 255, 255)",
        "labelColor": "rgb(200, 200, 200)",
    }
    barcode = {
        "format": "PKBarcodeFormatQR",
        "message": "1000000017",
        "messageEncoding": "iso-8859-1",
        "altText": "1000000017",
    }
    assert document["barcodes"] == [barcode]
    assert document["barcode"] == barcode
    card = document["storeCard"]
    assert card["headerFields"] == [
        {
            "key": "points",
            "label": "POINTS",
            "value": 1234,
            "numberStyle": "PKNumberStyleDecimal",
            "changeMessage": "POINTS_CHANGED",
        }
    ]
    assert card["primaryFields"] == [{"key": "name", "label": "MEMBER", "value": 'Anna "A" Andersson'}]
    assert card["secondaryFields"] == [
        {"key": "tier", "label": "TIER", "value": "Silver", "changeMessage": "TIER_CHANGED"},
        {"key": "progress", "label": "NEXT_TIER", "value": "PROGRESS"},
    ]
    assert [f["key"] for f in card["auxiliaryFields"]] == ["expiring", "expires"]
    assert card["auxiliaryFields"][0]["value"] == 30
    assert card["auxiliaryFields"][1]["value"] == "2026-04-01T00:00:00Z"
    assert card["backFields"] == [
        {"key": "member_number", "label": "MEMBER_NUMBER", "value": "1000000017"},
        {"key": "pending", "label": "PENDING", "value": 56, "numberStyle": "PKNumberStyleDecimal"},
        {"key": "terms", "label": "TERMS", "value": "Points expire after a year.\nThe club's terms apply."},
    ]
    english, swedish = checked.strings("en"), checked.strings("sv")
    assert (english["POINTS_CHANGED"], english["PROGRESS"], english["POINTS"]) == (
        "You now have %@ points",
        "766 points to Gold",
        "Points",
    )
    assert (swedish["POINTS_CHANGED"], swedish["PROGRESS"], swedish["TIER"]) == (
        "Du har nu %@ poäng",
        "766 poäng kvar till Gold",
        "Nivå",
    )
    assert set(english) == set(swedish)
    assert checked.files["icon@2x.png"] == (IMAGES_DIR / "icon@2x.png").read_bytes()


@pytest.mark.parametrize(
    ("barcode_format", "apple_format", "legacy"),
    [
        (WalletBarcode.QR, "PKBarcodeFormatQR", True),
        (WalletBarcode.PDF417, "PKBarcodeFormatPDF417", True),
        (WalletBarcode.AZTEC, "PKBarcodeFormatAztec", True),
        (WalletBarcode.CODE128, "PKBarcodeFormatCode128", False),  # iOS 9+: not in the legacy key
    ],
)
def test_the_barcode_format_is_the_programs(
    credentials: AppleCredentials,
    wallet_dev_directory: Path,
    tmp_path: Path,
    barcode_format: WalletBarcode,
    apple_format: str,
    legacy: bool,
) -> None:
    design = PassDesign(**{**DESIGN.__dict__, "barcode_format": barcode_format, "languages": ("en",)})
    checked = check_pkpass(
        build_pass(CONTENT, design, IDENTITY, credentials), wallet_dev_directory / "root-ca.pem", tmp_path
    )
    assert [b["format"] for b in checked.pass_json["barcodes"]] == [apple_format]
    assert ("barcode" in checked.pass_json) is legacy
    assert "sv.lproj/pass.strings" not in checked.files


def test_the_top_tier_and_nothing_expiring(
    credentials: AppleCredentials, wallet_dev_directory: Path, tmp_path: Path
) -> None:
    content = PassContent(
        **{
            **CONTENT.__dict__,
            "display_name": "",
            "next_tier_name": None,
            "remaining_to_next": None,
            "expiring_points": 0,
            "expiring_at": None,
        }
    )
    checked = check_pkpass(
        build_pass(content, DESIGN, IDENTITY, credentials), wallet_dev_directory / "root-ca.pem", tmp_path
    )
    card = checked.pass_json["storeCard"]
    assert card["primaryFields"][0]["value"] == "1000000017"  # no name: the member number
    assert card["secondaryFields"][1]["value"] == "TOP_TIER"
    assert card["auxiliaryFields"] == []
    assert "PROGRESS" not in checked.strings("en")
    assert checked.strings("sv")["TOP_TIER"] == "Du är på högsta nivån"


def test_branding_images_replace_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "logo@3x.png").write_bytes(b"\x89PNG custom")
    found = images(tmp_path)
    assert found["logo@3x.png"] == b"\x89PNG custom"
    assert found["logo.png"] == (IMAGES_DIR / "logo.png").read_bytes()
    assert sorted(found) == sorted(IMAGE_NAMES)


def test_a_tampered_manifest_does_not_verify(
    credentials: AppleCredentials, wallet_dev_directory: Path, tmp_path: Path
) -> None:
    import io
    import subprocess
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(build_pass(CONTENT, DESIGN, IDENTITY, credentials)))
    (tmp_path / "signature").write_bytes(archive.read("signature"))
    (tmp_path / "manifest.json").write_bytes(archive.read("manifest.json").replace(b"{", b"{ ", 1))
    result = subprocess.run(
        ["openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signature"),
         "-content", str(tmp_path / "manifest.json"), "-CAfile", str(wallet_dev_directory / "root-ca.pem"),
         "-out", "/dev/null"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert b"digest failure" in result.stderr
