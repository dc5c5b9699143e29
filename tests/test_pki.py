"""The lab PKI (:mod:`responder.pki`): what the certificates say, that they verify, the files on disk."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import VerificationError

from responder.pki import (
    CA_NAME,
    IKE_INTERMEDIATE,
    Issued,
    IssuedPki,
    KeyType,
    PkiError,
    PkiRequest,
    check_client,
    client_identity,
    ike_verifier,
    issue,
    parse_san,
    write,
)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module", params=list(KeyType), ids=[kind.value for kind in KeyType])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> IssuedPki:
    """One PKI per key type (RSA at its default 3072 bits), issued at :data:`NOW`, not written."""
    directory = tmp_path_factory.mktemp("pki") / "certs"
    return issue(PkiRequest(directory=directory, key_type=request.param, clients=("client1", "bob")), NOW)


def _responder(pki: IssuedPki) -> Issued:
    assert pki.responder is not None
    return pki.responder


def _leaves(pki: IssuedPki) -> list[Issued]:
    return [_responder(pki), *pki.clients]


T = TypeVar("T", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[T]) -> x509.Extension[T]:
    return cert.extensions.get_extension_for_class(kind)


# ---------------------------------------------------------------------------
# The certificates
# ---------------------------------------------------------------------------


def test_every_leaf_verifies_with_the_ike_policy(pki: IssuedPki) -> None:
    verifier = ike_verifier([pki.ca.cert], NOW)
    for leaf in _leaves(pki):
        verified = verifier.verify(leaf.cert, [])
        assert verified.chain == [leaf.cert, pki.ca.cert]
        assert verified.subjects == list(_ext(leaf.cert, x509.SubjectAlternativeName).value)


def test_leaves_do_not_verify_outside_their_validity_or_under_another_ca(pki: IssuedPki) -> None:
    leaf = pki.clients[0].cert
    for when in (NOW - datetime.timedelta(hours=2), NOW + datetime.timedelta(days=366)):
        with pytest.raises(VerificationError):
            ike_verifier([pki.ca.cert], when).verify(leaf, [])
    other = issue(PkiRequest(directory=Path("/nonexistent/other"), responder_id=None), NOW).ca.cert
    with pytest.raises(VerificationError):
        ike_verifier([other], NOW).verify(leaf, [])


def test_responder_certificate(pki: IssuedPki) -> None:
    cert = _responder(pki).cert
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "responder.lab"
    assert list(_ext(cert, x509.SubjectAlternativeName).value) == [
        x509.DNSName("responder.lab"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert list(eku.value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.IPSEC_IKE,
        IKE_INTERMEDIATE,
    ]
    assert eku.value[1].dotted_string == "1.3.6.1.5.5.7.3.17"


def test_client_certificates(pki: IssuedPki) -> None:
    assert [client.name for client in pki.clients] == ["client1", "bob"]
    for client in pki.clients:
        cert = client.cert
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == client.name
        assert list(_ext(cert, x509.SubjectAlternativeName).value) == [x509.RFC822Name(f"{client.name}@lab")]
        assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.IPSEC_IKE,
        ]


def test_leaf_key_usage_constraints_and_key_identifiers(pki: IssuedPki) -> None:
    ca_ski = _ext(pki.ca.cert, x509.SubjectKeyIdentifier).value.digest
    for leaf in _leaves(pki):
        key_usage = _ext(leaf.cert, x509.KeyUsage)
        assert key_usage.critical
        assert key_usage.value.digital_signature
        # Windows expects keyEncipherment on RSA gateway certificates; it means nothing for EC/EdDSA keys
        assert key_usage.value.key_encipherment is (pki.request.key_type is KeyType.RSA)
        assert not key_usage.value.key_cert_sign
        basic = _ext(leaf.cert, x509.BasicConstraints)
        assert basic.critical and not basic.value.ca
        assert _ext(leaf.cert, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
        expected = x509.SubjectKeyIdentifier.from_public_key(leaf.cert.public_key())
        assert _ext(leaf.cert, x509.SubjectKeyIdentifier).value == expected
        assert leaf.cert.issuer == pki.ca.cert.subject


def test_ca_certificate(pki: IssuedPki) -> None:
    cert = pki.ca.cert
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_NAME
    basic = _ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    key_usage = _ext(cert, x509.KeyUsage)
    assert key_usage.critical and key_usage.value.key_cert_sign and key_usage.value.crl_sign
    assert not key_usage.value.digital_signature
    assert _ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        cert.public_key()
    )
    cert.verify_directly_issued_by(cert)


def test_key_types(pki: IssuedPki) -> None:
    kind = pki.request.key_type
    for leaf in _leaves(pki):
        public = leaf.cert.public_key()
        if kind is KeyType.RSA:
            assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
        elif kind is KeyType.ECDSA:
            assert isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)
        else:
            assert isinstance(public, ed25519.Ed25519PublicKey)
        assert leaf.key.public_key() == public
    # Ed25519 cannot sign certificates under the web-PKI profile the verifier builds on: ECDSA CA
    ca_public = pki.ca.cert.public_key()
    assert isinstance(ca_public, rsa.RSAPublicKey if kind is KeyType.RSA else ec.EllipticCurvePublicKey)
    assert isinstance(pki.ca.cert.signature_hash_algorithm, hashes.SHA256)


def test_validity_and_serials(pki: IssuedPki) -> None:
    for leaf in _leaves(pki):
        assert leaf.cert.not_valid_before_utc == NOW - datetime.timedelta(hours=1)
        assert leaf.cert.not_valid_after_utc == NOW + datetime.timedelta(days=365)
    assert pki.ca.cert.not_valid_after_utc == NOW + datetime.timedelta(days=3650)
    serials = [cert.serial_number for cert in (pki.ca.cert, *(leaf.cert for leaf in _leaves(pki)))]
    assert len(set(serials)) == len(serials)
    assert all(0 < serial < 2**159 for serial in serials)
    assert max(serials).bit_length() > 64  # random, not counted


def test_pkcs12_bundles_load_back_with_their_password(pki: IssuedPki) -> None:
    files = {file.path.name: file for file in pki.files}
    for leaf in _leaves(pki):
        data = files[f"{leaf.name}.p12"].data
        password = pki.passwords[leaf.name]
        assert files[f"{leaf.name}.p12.password"].data == password.encode() + b"\n"
        bundle = pkcs12.load_pkcs12(data, password.encode())
        assert bundle.key is not None and bundle.key.public_key() == leaf.cert.public_key()
        assert bundle.cert is not None and bundle.cert.certificate == leaf.cert
        assert bundle.cert.friendly_name == leaf.name.encode()
        assert [(extra.certificate, extra.friendly_name) for extra in bundle.additional_certs] == [
            (pki.ca.cert, CA_NAME.encode())
        ]
        with pytest.raises(ValueError):
            pkcs12.load_pkcs12(data, b"wrong password")
    assert len(set(pki.passwords.values())) == len(pki.passwords)  # one random password per bundle


def test_pem_files_are_what_the_responder_reads(pki: IssuedPki) -> None:
    files = {file.path.name: file for file in pki.files}
    for leaf in (pki.ca, *_leaves(pki)):
        key_pem = files[f"{leaf.name}.key"].data
        assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, unencrypted
        assert serialization.load_pem_private_key(key_pem, None).public_key() == leaf.cert.public_key()
        assert x509.load_pem_x509_certificates(files[f"{leaf.name}.pem"].data) == [leaf.cert]


# ---------------------------------------------------------------------------
# The IKE verification policy itself
# ---------------------------------------------------------------------------


def _leaf_with(pki: IssuedPki, *extensions: x509.ExtensionType) -> x509.Certificate:
    """A leaf signed by ``pki``'s CA with exactly ``extensions`` (plus its AKI)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = _ext(pki.ca.cert, x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")]))
        .issuer_name(pki.ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    ca_key = pki.ca.key
    assert not isinstance(ca_key, ed25519.Ed25519PrivateKey)
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(**flags: bool) -> x509.KeyUsage:
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    ]
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


def test_ike_policy_accepts_what_rfc_4945_allows(pki: IssuedPki) -> None:
    verifier = ike_verifier([pki.ca.cert], NOW)
    accepted = [
        (),  # DN only: no SAN, no EKU, no keyUsage
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.IPSEC_IKE]),),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]),),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),),
        (_key_usage(content_commitment=True),),
    ]
    for extensions in accepted:
        assert verifier.verify(_leaf_with(pki, *extensions), []).subjects is None


def test_ike_policy_refuses_leaves_not_for_ike(pki: IssuedPki) -> None:
    verifier = ike_verifier([pki.ca.cert], NOW)
    refused = [
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CODE_SIGNING]),
        _key_usage(key_encipherment=True),
    ]
    for extension in refused:
        with pytest.raises(VerificationError):
            verifier.verify(_leaf_with(pki, extension), [])


# ---------------------------------------------------------------------------
# Names and requests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("DNS:vpn.example.org", x509.DNSName("vpn.example.org")),
        ("dns:192.0.2.2", x509.DNSName("192.0.2.2")),  # Windows: an address as a DNS SAN
        ("IP:192.0.2.2", x509.IPAddress(ipaddress.ip_address("192.0.2.2"))),
        ("IP:::1", x509.IPAddress(ipaddress.ip_address("::1"))),
        ("email:alice@example.org", x509.RFC822Name("alice@example.org")),
        ("2001:db8::2", x509.IPAddress(ipaddress.ip_address("2001:db8::2"))),
        ("198.51.100.2", x509.IPAddress(ipaddress.ip_address("198.51.100.2"))),
        ("vpn.lab.", x509.DNSName("vpn.lab")),
    ],
)
def test_parse_san(text: str, name: x509.GeneralName) -> None:
    assert parse_san(text) == name


@pytest.mark.parametrize(
    "text", ["IP:vpn.lab", "email:nobody", "DNS:-bad.lab", "a b", "x" * 64 + ".lab", "email:@lab", ""]
)
def test_parse_san_refuses(text: str) -> None:
    with pytest.raises(PkiError):
        parse_san(text)


def test_client_names() -> None:
    assert client_identity("client1") == "client1@lab"
    assert client_identity("carol@example.org") == "carol@example.org"
    for good in ("client1", "a.b-c_d", "carol@example.org"):
        check_client(good)
    for bad in ("ca", "responder", "../x", "a/b", "a b", ".hidden", "@lab", "a@", "a@b@c", "a@-x", ""):
        with pytest.raises(PkiError):
            check_client(bad)


def test_request_limits() -> None:
    with pytest.raises(PkiError, match="rsa-bits"):
        PkiRequest(rsa_bits=1024)
    with pytest.raises(PkiError, match="days"):
        PkiRequest(days=0)
    with pytest.raises(PkiError, match="p12-password"):
        PkiRequest(p12_password="")
    assert "hunter2" not in repr(PkiRequest(p12_password="hunter2"))
    with pytest.raises(PkiError, match="each name once"):
        issue(PkiRequest(directory=Path("/nonexistent"), clients=("a", "a")), NOW)
    with pytest.raises(PkiError, match="nothing to make"):
        issue(PkiRequest(directory=Path("/nonexistent"), responder_id=None, clients=()), NOW)
    with pytest.raises(PkiError, match="responder-id"):
        issue(PkiRequest(directory=Path("/nonexistent"), responder_id="email:a@b"), NOW)


def test_responder_sans_from_the_request() -> None:
    request = PkiRequest(
        directory=Path("/nonexistent"),
        responder_id="192.0.2.2",
        sans=("DNS:192.0.2.2", "vpn.lab", "IP:192.0.2.2"),
        clients=(),
    )
    cert = _responder(issue(request, NOW)).cert
    assert list(_ext(cert, x509.SubjectAlternativeName).value) == [  # the ID first, each SAN once
        x509.IPAddress(ipaddress.ip_address("192.0.2.2")),
        x509.DNSName("192.0.2.2"),
        x509.DNSName("vpn.lab"),
    ]


def test_leaves_never_outlive_the_ca() -> None:
    pki = issue(PkiRequest(directory=Path("/nonexistent"), days=36500), NOW)
    assert pki.ca.cert.not_valid_after_utc == NOW + datetime.timedelta(days=36500)
    assert all(leaf.cert.not_valid_after_utc <= pki.ca.cert.not_valid_after_utc for leaf in _leaves(pki))


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


@pytest.fixture(params=[0o000, 0o077], ids=["umask-000", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The umask while a test runs: no key or password file may depend on it."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_modes(tmp_path: Path, umask: int) -> None:
    directory = tmp_path / "new" / "certs"
    pki = issue(PkiRequest(directory=directory), NOW)
    write(pki)
    leaves = [
        f"{stem}{end}"
        for stem in ("responder", "client1")
        for end in (".pem", ".key", ".p12", ".p12.password")
    ]
    assert sorted(path.name for path in directory.iterdir()) == sorted(["ca.pem", "ca.key", *leaves])
    assert _mode(directory) == 0o700
    for path in directory.iterdir():
        secret = path.suffix in (".key", ".p12", ".password")
        assert _mode(path) == (0o600 if secret else 0o644 & ~umask), path.name
    for file in pki.files:
        assert file.path.read_bytes() == file.data


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    write(issue(PkiRequest(directory=directory), NOW))
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    with pytest.raises(PkiError, match=r"not overwriting .*responder\.pem.*client1\.key"):
        issue(PkiRequest(directory=directory), NOW)
    (directory / "client1.key").chmod(0o644)  # loosened by hand: --force must tighten it again
    forced = issue(PkiRequest(directory=directory, force=True), NOW)
    assert not forced.ca_reused
    write(forced)
    after = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert after.keys() == before.keys()
    assert all(after[name] != before[name] for name in after)
    assert _mode(directory / "client1.key") == 0o600


def test_refuses_a_file_in_the_way_even_a_dangling_link(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "client1.p12").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PkiError, match=r"client1\.p12"):
        issue(PkiRequest(directory=directory), NOW)
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(path.name for path in directory.iterdir()) == ["client1.p12"]


def test_an_existing_ca_signs_new_clients(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    first = issue(PkiRequest(directory=directory), NOW)
    write(first)
    ca_pem = (directory / "ca.pem").read_bytes()
    later = NOW + datetime.timedelta(days=30)
    added = issue(PkiRequest(directory=directory, responder_id=None, clients=("bob",)), later)
    assert added.ca_reused and added.responder is None
    assert [file.path.name for file in added.files] == ["bob.pem", "bob.key", "bob.p12", "bob.p12.password"]
    write(added)
    assert (directory / "ca.pem").read_bytes() == ca_pem
    bob = x509.load_pem_x509_certificate((directory / "bob.pem").read_bytes())
    ike_verifier(x509.load_pem_x509_certificates(ca_pem), later).verify(bob, [])


def test_an_unusable_ca_is_not_reused(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    write(issue(PkiRequest(directory=directory), NOW))
    (directory / "ca.key").unlink()
    with pytest.raises(PkiError, match=r"only one of ca\.pem and ca\.key"):
        issue(PkiRequest(directory=directory, responder_id=None, clients=("bob",)), NOW)
    (directory / "ca.key").write_bytes((directory / "client1.key").read_bytes())
    with pytest.raises(PkiError, match="is not the key of"):
        issue(PkiRequest(directory=directory, responder_id=None, clients=("bob",)), NOW)
    (directory / "ca.pem").write_bytes((directory / "client1.pem").read_bytes())
    with pytest.raises(PkiError, match="not a CA certificate"):
        issue(PkiRequest(directory=directory, responder_id=None, clients=("bob",)), NOW)


def test_an_expired_or_refused_ca_is_not_reused(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    write(issue(PkiRequest(directory=directory), NOW))
    add_bob = PkiRequest(directory=directory, responder_id=None, clients=("bob",))
    with pytest.raises(PkiError, match="expired on 2036-02-27: --force makes a new CA"):
        issue(add_bob, NOW + datetime.timedelta(days=3651))
    # an Ed25519 CA made elsewhere: the web-PKI profile refuses its signatures, so nothing is issued
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed25519 CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, None)
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "ca.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(PkiError, match="the bob certificate does not verify under"):
        issue(add_bob, NOW)
