"""Checking a .pkpass as Apple would: the manifest covers every file, and the detached signature verifies with
`openssl smime -verify -binary -inform DER` and, read with asn1crypto, has the CMS structure Apple expects (signed
data, detached, SHA-256 message digest of manifest.json, signing time, the WWDR certificate embedded, a chain
pass certificate → WWDR → root)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding


@dataclass(frozen=True)
class CheckedPass:
    files: dict[str, bytes]
    pass_json: dict[str, Any]
    signing_time: datetime
    signer_subject: str

    def strings(self, language: str) -> dict[str, str]:
        text = self.files[f"{language}.lproj/pass.strings"].decode()
        found = {}
        for line in text.splitlines():
            key, _, value = line.partition(" = ")
            found[key.strip('"')] = value.rstrip(";").strip('"').replace('\\"', '"').replace("\\n", "\n")
        return found


def _verify_with(issuer: x509.Certificate, certificate: x509.Certificate) -> None:
    public = issuer.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert certificate.signature_hash_algorithm is not None
    public.verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        padding.PKCS1v15(),
        certificate.signature_hash_algorithm,
    )


def check_pkpass(data: bytes, root_ca: Path, tmp_path: Path) -> CheckedPass:
    tmp_path.mkdir(parents=True, exist_ok=True)
    archive = zipfile.ZipFile(io.BytesIO(data))
    files = {name: archive.read(name) for name in archive.namelist()}
    assert archive.testzip() is None

    # the manifest: exactly every other file, by SHA-1
    manifest = orjson.loads(files["manifest.json"])
    covered = {name: hashlib.sha1(body).hexdigest() for name, body in files.items()}  # noqa: S324
    del covered["manifest.json"], covered["signature"]
    assert manifest == covered

    # openssl, as the issue asks
    (tmp_path / "signature").write_bytes(files["signature"])
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    verified = subprocess.run(
        [
            "openssl", "smime", "-verify", "-binary", "-inform", "DER",
            "-in", str(tmp_path / "signature"), "-content", str(tmp_path / "manifest.json"),
            "-CAfile", str(root_ca), "-out", str(tmp_path / "verified"),
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr.decode()
    assert b"Verification successful" in verified.stderr
    assert (tmp_path / "verified").read_bytes() == files["manifest.json"]

    # the CMS structure, in Python
    info = cms.ContentInfo.load(files["signature"])
    assert info["content_type"].native == "signed_data"
    signed = info["content"]
    assert signed["encap_content_info"]["content_type"].native == "data"
    assert signed["encap_content_info"]["content"].native is None  # detached
    assert len(signed["signer_infos"]) == 1
    signer = signed["signer_infos"][0]
    assert signer["digest_algorithm"]["algorithm"].native == "sha256"
    attributes = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    assert attributes["content_type"].native == "data"
    assert attributes["message_digest"].native == hashlib.sha256(files["manifest.json"]).digest()
    signing_time = attributes["signing_time"].native
    assert abs(datetime.now(UTC) - signing_time) < timedelta(minutes=5)

    # the embedded certificates: the signer's and the WWDR intermediate; the chain up to the root
    certificates = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"]]
    by_subject = {c.subject.rfc4514_string(): c for c in certificates}
    issuer_serial = signer["sid"].chosen
    signer_cert = next(c for c in certificates if c.serial_number == issuer_serial["serial_number"].native)
    wwdr = by_subject[signer_cert.issuer.rfc4514_string()]
    root = x509.load_pem_x509_certificate(root_ca.read_bytes())
    assert len(certificates) == 2
    _verify_with(wwdr, signer_cert)
    _verify_with(root, wwdr)
    assert asn1_x509.Certificate.load(signer_cert.public_bytes(Encoding.DER)).subject.native["user_id"]

    # the signature over the signed attributes, with the signer's key
    signed_attrs = signer["signed_attrs"].untag().dump()
    public = signer_cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signer["signature"].native, signed_attrs, padding.PKCS1v15(), hashes.SHA256())

    return CheckedPass(
        files=files,
        pass_json=orjson.loads(files["pass.json"]),
        signing_time=signing_time,
        signer_subject=signer_cert.subject.rfc4514_string(),
    )
