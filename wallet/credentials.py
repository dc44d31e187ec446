"""The credentials that sign Apple Wallet passes and authenticate to APNs.

In production they come from the environment: the Pass Type ID certificate and its private key (PEM, as exported
from the Apple developer account), and Apple's WWDR intermediate certificate (embedded in every signature). The pass
type identifier and the team identifier are read from the certificate (its subject's UID and OU), never configured
twice.

Without them (the embedded default) klubb makes a development chain in `var/wallet-dev/` once — a root CA, a WWDR
stand-in, and a pass certificate for `pass.dev.klubb.member` — and signs with it. Those passes verify against the
development root (`openssl smime -verify -CAfile var/wallet-dev/root-ca.pem`), but real devices refuse them: a line
in the log says so at start-up. Production refuses to start with the wallet enabled and credentials missing
(`api.settings`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from loyalty.private_files import exclusive, write_once
from wallet.config import AppleWalletConfig

log = logging.getLogger("klubb.wallet")

DEV_PASS_TYPE_ID = "pass.dev.klubb.member"  # noqa: S105 -- an identifier, no secret
DEV_TEAM_ID = "KLUBBDEV00"
DEV_FILES = ("root-ca.pem", "wwdr.pem", "pass.pem", "pass-key.pem")
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CredentialsError(RuntimeError):
    """The configured Apple Wallet credentials cannot be used (missing, unreadable, or not a pass certificate)."""


@dataclass(frozen=True)
class AppleCredentials:
    certificate: x509.Certificate
    private_key: SigningKey
    wwdr: x509.Certificate
    certificate_file: Path  # for the APNs client's TLS certificate
    key_file: Path
    key_password: str | None
    development: bool
    root: x509.Certificate | None = None  # development only: what the passes verify against

    @property
    def pass_type_id(self) -> str:
        return _subject(self.certificate, NameOID.USER_ID, "UID (the pass type identifier)")

    @property
    def team_id(self) -> str:
        return _subject(self.certificate, NameOID.ORGANIZATIONAL_UNIT_NAME, "OU (the team identifier)")


def _subject(certificate: x509.Certificate, oid: x509.ObjectIdentifier, label: str) -> str:
    values = certificate.subject.get_attributes_for_oid(oid)
    if not values:
        raise CredentialsError(f"the pass certificate's subject has no {label}: is it a Pass Type ID certificate?")
    value = values[0].value
    return value if isinstance(value, str) else value.decode()


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CredentialsError(f"{what} {path!r} cannot be read: {error.strerror}") from None


def _load_key(data: bytes, password: str | None, path: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except (ValueError, TypeError) as error:
        raise CredentialsError(f"the pass key {path!r} cannot be loaded: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CredentialsError(f"the pass key {path!r} is neither RSA nor EC")
    return key


def _load_certificate(data: bytes, path: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as error:
        raise CredentialsError(f"{path!r} is not a PEM certificate: {error}") from None


def load_apple_credentials(
    certificate_file: str, key_file: str, wwdr_file: str, key_password: str | None = None, *, development: bool = False
) -> AppleCredentials:
    """Load and check configured credentials: the key is the certificate's, the certificate names a pass type and a
    team and is issued by the WWDR certificate, and none has expired. Raises `CredentialsError`."""
    certificate = _load_certificate(_read(certificate_file, "the pass certificate"), certificate_file)
    key = _load_key(_read(key_file, "the pass key"), key_password, key_file)
    wwdr = _load_certificate(_read(wwdr_file, "the WWDR certificate"), wwdr_file)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise CredentialsError("the pass key does not belong to the pass certificate")
    try:
        certificate.verify_directly_issued_by(wwdr)
    except (ValueError, TypeError, InvalidSignature):
        raise CredentialsError("the pass certificate is not issued by the WWDR certificate") from None
    now = dt.datetime.now(dt.UTC)
    for name, cert in (("pass", certificate), ("WWDR", wwdr)):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CredentialsError(
                f"the {name} certificate is not valid now (until {cert.not_valid_after_utc:%Y-%m-%d})"
            )
    credentials = AppleCredentials(
        certificate=certificate,
        private_key=key,
        wwdr=wwdr,
        certificate_file=Path(certificate_file),
        key_file=Path(key_file),
        key_password=key_password,
        development=development,
    )
    credentials.pass_type_id, credentials.team_id  # noqa: B018 -- both must be there
    return credentials


def _name(common_name: str, **extra: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if "uid" in extra:
        attributes.insert(0, x509.NameAttribute(NameOID.USER_ID, extra["uid"]))
    if "ou" in extra:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, extra["ou"]))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, extra.get("o", "klubb development")))
    return x509.Name(attributes)


def _certificate(
    subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey, *, ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650 if ca else 825))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def make_development_chain(
    directory: Path, *, pass_type_id: str = DEV_PASS_TYPE_ID, team_id: str = DEV_TEAM_ID
) -> None:
    """Write a root CA, a WWDR stand-in it issues, and a pass certificate + key the WWDR stand-in issues."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _name("klubb development root CA")
    root = _certificate(root_name, root_key, root_name, root_key, ca=True)
    wwdr_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wwdr_name = _name("klubb development WWDR stand-in")
    wwdr = _certificate(wwdr_name, wwdr_key, root_name, root_key, ca=True)
    pass_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pass_name = _name(f"Pass Type ID: {pass_type_id}", uid=pass_type_id, ou=team_id)
    certificate = _certificate(pass_name, pass_key, wwdr_name, wwdr_key, ca=False)
    (directory / "root-ca.pem").write_bytes(_pem(root))
    (directory / "wwdr.pem").write_bytes(_pem(wwdr))
    (directory / "pass.pem").write_bytes(_pem(certificate))
    _write_private(
        directory / "pass-key.pem",
        pass_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def development_credentials(directory: Path) -> AppleCredentials:
    """The development chain in `directory`, made on first use (and again once its pass certificate expired)."""
    with exclusive(directory):  # several workers may start at once: one makes the chain, the others read it
        return _development_credentials(directory)


def _development_credentials(directory: Path) -> AppleCredentials:
    try:
        if not all((directory / name).is_file() for name in DEV_FILES):
            raise CredentialsError("no development chain yet")
        credentials = load_apple_credentials(
            str(directory / "pass.pem"), str(directory / "pass-key.pem"), str(directory / "wwdr.pem"), development=True
        )
    except CredentialsError:
        make_development_chain(directory)
        credentials = load_apple_credentials(
            str(directory / "pass.pem"), str(directory / "pass-key.pem"), str(directory / "wwdr.pem"), development=True
        )
    root = _load_certificate((directory / "root-ca.pem").read_bytes(), str(directory / "root-ca.pem"))
    return AppleCredentials(**{**credentials.__dict__, "root": root})


def development_secret(directory: str) -> bytes:
    """Development only: the wallet secret kept in `directory/secret` (made on first use)."""
    path = Path(directory) / "secret"
    try:
        secret = path.read_bytes().strip()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    # several workers may start at once: the first secret written is everyone's (links verify in every worker)
    return write_once(path, secrets.token_urlsafe(48).encode()).strip()


def apple_credentials(config: AppleWalletConfig) -> AppleCredentials:
    """The configured credentials, or (none configured) the development chain, said loudly in the log."""
    configured = (config.certificate_file, config.key_file, config.wwdr_file)
    if all(configured):
        return load_apple_credentials(
            str(config.certificate_file), str(config.key_file), str(config.wwdr_file), config.key_password
        )
    if any(configured):
        raise CredentialsError(
            "Apple Wallet needs all of KLUBB_APPLE_PASS_CERTIFICATE_FILE, KLUBB_APPLE_PASS_KEY_FILE and "
            "KLUBB_APPLE_WWDR_CERTIFICATE_FILE, or none of them (development)"
        )
    credentials = development_credentials(Path(config.dev_directory))
    log.warning(
        "Apple Wallet: no credentials configured; signing passes with the development CA in %s "
        "(pass type %s). They verify against %s/root-ca.pem but real devices will refuse them",
        config.dev_directory,
        credentials.pass_type_id,
        config.dev_directory,
    )
    return credentials
