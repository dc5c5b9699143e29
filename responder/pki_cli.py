"""``ikev2-responder certs``: make the lab PKI and say how to use it.

Strategy: :func:`main` parses the flags into a
:class:`~responder.pki.PkiRequest`, lets :mod:`responder.pki` issue and write
the files, then prints on stdout, between ``=====`` lines: each file written
with its mode, the responder's SANs, the PKCS#12 passwords, the
``ikev2-responder`` command line that uses the files (``--cert``, ``--key``,
``--ca``), and :func:`render_instructions`: how to install the first client's
files into strongSwan, libreswan, Android's strongSwan app, Apple devices and
Windows.  ``certs/README.md`` shows that text for the defaults, and a test
keeps the two equal.  Exit status: 0 written, 1 nothing written (a file in the
way without ``--force``, a CA that cannot be reused, an OS error), 2 a usage
error.  Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TextIO

from cryptography import x509

from responder.pki import (
    CA_NAME,
    DEFAULT_DAYS,
    DEFAULT_DIR,
    DEFAULT_RESPONDER_ID,
    DEFAULT_RSA_BITS,
    DEFAULT_SANS,
    IssuedPki,
    KeyType,
    PkiError,
    PkiRequest,
    check_client,
    client_identity,
    issue,
    parse_san,
    show_san,
    write,
)

__all__ = ["build_parser", "main", "render_instructions", "render_report"]

_RULE: Final = "=" * 5
#: The NSS database libreswan uses on Debian and Ubuntu (Fedora and RHEL: /etc/ipsec.d).
_NSS_DB: Final = "sql:/var/lib/ipsec/nss"


def _libreswan_id(identity: str) -> str:
    """libreswan resolves a bare name as a host name: an FQDN ID takes an ``@``."""
    if "@" in identity or isinstance(parse_san(identity), x509.IPAddress):
        return identity
    return f"@{identity}"


def render_instructions(
    directory: str,
    responder_id: str,
    client: str,
    key_type: KeyType,
    *,
    password_files: bool = True,
) -> str:
    """How to install client ``client``'s files from ``directory`` on each target.

    strongSwan (swanctl), libreswan (NSS), Android's strongSwan app, Apple and
    Windows; for Ed25519 strongSwan only, the one of them that takes Ed25519
    keys.  Each snippet changes the client configuration the responder prints
    at start from PSK to certificate authentication.  PKCS#12 passwords are
    referred to by their files (``password_files``) or as the one given with
    ``--p12-password``.
    """
    d = directory.rstrip("/") or "."
    cid = client_identity(client)

    def path(name: str) -> str:
        return shlex.quote(f"{d}/{name}")

    p12 = f"{client}.p12"
    password = f"in {d}/{p12}.password" if password_files else "the one given with --p12-password"
    lines = [
        f"{_RULE} strongSwan (swanctl) {_RULE}",
        f"cp {path('ca.pem')} /etc/swanctl/x509ca/lab-ca.pem",
        f"cp {path(client + '.pem')} /etc/swanctl/x509/",
        f"install -m 600 {path(client + '.key')} /etc/swanctl/private/",
        "# in the swanctl.conf connection the responder prints at start, authenticate",
        "# with the certificate instead of the PSK (and leave out its secrets section):",
        "        local {",
        "            auth = pubkey",
        f"            certs = {client}.pem",
        f"            id = {cid}",
        "        }",
        "        remote {",
        "            auth = pubkey",
        f"            id = {responder_id}",
        "        }",
        "# then: swanctl --load-all && swanctl --initiate --child lab",
    ]
    if key_type is KeyType.ED25519:
        lines += [
            f"{_RULE} other clients {_RULE}",
            "Windows, Apple and the Android app's key store take no Ed25519 keys, and libreswan only",
            "with a recent NSS: make an ECDSA set for them (--key-type ecdsa --dir ANOTHER_DIR).",
        ]
        return "\n".join(lines) + "\n"
    password_file = f" -w {path(p12 + '.password')}" if password_files else ""
    lines += [
        f"{_RULE} libreswan (its NSS database; /etc/ipsec.d on Fedora and RHEL) {_RULE}",
        "ipsec initnss  # once, where no database is there yet",
        f"pk12util -i {path(p12)} -d {_NSS_DB}{password_file}",
        f'certutil -M -d {_NSS_DB} -n "{CA_NAME}" -t CT,,',
        "# in the ipsec.conf connection the responder prints at start, put these in place of",
        "# authby=secret and leftid= (and leave out the ipsec.secrets line):",
        f"    authby={'rsasig' if key_type is KeyType.RSA else 'ecdsa'}",
        f"    leftcert={client}",
        f"    leftid={cid}",
        f"    rightid={_libreswan_id(responder_id)}",
        "# then: ipsec auto --add ikev2-lab-tcp && ipsec auto --up ikev2-lab-tcp",
        f"{_RULE} Android: the strongSwan VPN Client app {_RULE}",
        f"1. Copy {path('ca.pem')} and {path(p12)} to the phone.",
        "2. In the app's menu: CA certificates, then in its menu: Import certificate: ca.pem.",
        "3. Add VPN profile: Server = the responder's address or name; VPN Type = IKEv2 Certificate;",
        f"   User certificate > Install: {p12} (password {password});",
        f'   CA certificate: not "Select automatically" but "{CA_NAME}".',
        f"4. Advanced settings: Server identity = {responder_id}; Client identity = {cid}.",
        f"{_RULE} Apple: iOS, iPadOS, macOS {_RULE}",
        "1. Send ca.pem to the device (AirDrop, Mail, Files) and install it: iOS: Settings > General >",
        "   VPN & Device Management, then General > About > Certificate Trust Settings: trust it;",
        "   macOS: Keychain Access, System keychain, Trust: Always Trust.",
        f"2. Install {p12} the same way (password {password}).",
        "3. Add VPN Configuration: Type IKEv2; Server = the responder's address or name;",
        f"   Remote ID = {responder_id} (a SAN of the responder's certificate); Local ID = {cid};",
        f"   iOS: User Authentication None, Use Certificate on, {client}; macOS: Authentication",
        f"   Settings > Certificate, {client}.",
        "   Apple clients ask for no certificate: the responder sends its certificate unasked.",
        f"{_RULE} Windows 10/11 (PowerShell as Administrator, in a folder holding ca.pem and {p12}) {_RULE}",
        "Import-Certificate -FilePath ca.pem -CertStoreLocation Cert:\\LocalMachine\\Root",
        f"Import-PfxCertificate -FilePath {p12} -CertStoreLocation Cert:\\LocalMachine\\My `",
        "    -Password (Read-Host -AsSecureString 'PKCS#12 password')",
        f"Add-VpnConnection -Name ikev2-lab -ServerAddress {responder_id} -TunnelType Ikev2 `",
        "    -AuthenticationMethod MachineCertificate -EncryptionLevel Required -Force",
        "Set-VpnConnectionIPsecConfiguration -ConnectionName ikev2-lab -EncryptionMethod AES256 `",
        "    -IntegrityCheckMethod SHA256 -DHGroup Group14 -CipherTransformConstants AES256 `",
        "    -AuthenticationTransformConstants SHA256128 -PfsGroup None -Force",
        "# -ServerAddress must be a DNS SAN of the responder's certificate (for an address too:",
        "# --san DNS:ADDRESS); Windows identifies itself by its certificate's subject DN.",
    ]
    return "\n".join(lines) + "\n"


def _responder_id(pki: IssuedPki) -> str:
    """The responder ID for the printed command: the one issued, else the directory's, else the default."""
    if pki.request.responder_id is not None:
        return pki.request.responder_id
    try:
        existing = x509.load_pem_x509_certificate((pki.request.directory / "responder.pem").read_bytes())
        first = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value[0]
    except (OSError, ValueError, x509.ExtensionNotFound, IndexError):
        return DEFAULT_RESPONDER_ID
    return str(first.value)


def render_report(pki: IssuedPki) -> str:
    """What ``ikev2-responder certs`` prints once the files of ``pki`` are written."""
    request = pki.request
    d = str(request.directory)
    kind = {KeyType.RSA: f"RSA {request.rsa_bits}", KeyType.ECDSA: "ECDSA P-256", KeyType.ED25519: "Ed25519"}
    lines = [f"{_RULE} ikev2-responder lab PKI in {d}/ ({kind[request.key_type]} keys) {_RULE}"]
    if pki.ca_reused:
        lines.append(f"kept {d}/ca.pem and {d}/ca.key: the existing CA signed the new certificates")
    width = max(len(str(file.path)) for file in pki.files)
    for file in pki.files:
        lines.append(f"wrote {file.path!s:<{width}}  {'0600' if file.secret else '0644'}  {file.what}")
    if pki.responder is not None:
        sans = pki.responder.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        lines.append(f"responder SANs: {' '.join(show_san(name) for name in sans)}")
    leaves = [leaf for leaf in (pki.responder, *pki.clients) if leaf is not None]
    until = min(leaf.cert.not_valid_after_utc for leaf in leaves)
    lines.append(f"valid until {until:%Y-%m-%d %H:%M} UTC; CA {pki.ca.cert.subject.rfc4514_string()}")
    if request.p12_password is None:
        lines.append("PKCS#12 passwords (lab secrets, also in the .p12.password files):")
        lines += [f"  {d}/{name}.p12: {password}" for name, password in pki.passwords.items()]
    responder_id = _responder_id(pki)
    command = ["ikev2-responder", "--id", responder_id]
    for flag, name in (("--cert", "responder.pem"), ("--key", "responder.key"), ("--ca", "ca.pem")):
        command += [flag, str(request.directory / name)]
    lines += [f"{_RULE} the responder, with these files {_RULE}", shlex.join(command)]
    if pki.clients:
        first = pki.clients[0].name
        text = render_instructions(
            d, responder_id, first, request.key_type, password_files=request.p12_password is None
        )
        lines.append(text.rstrip("\n"))
        if len(pki.clients) > 1:
            others = ", ".join(client.name for client in pki.clients[1:])
            lines.append(f"{_RULE} {others}: the same, with their own files and identities {_RULE}")
    lines.append(f"{_RULE} end {_RULE}")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The ``ikev2-responder certs`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ikev2-responder certs",
        description=(
            "Make a lab PKI for IKEv2: a CA, a responder certificate, client certificates and "
            "PKCS#12 bundles, then print how to use them. See certs/README.md."
        ),
    )
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, metavar="DIR", help="where to write (default: ./certs)"
    )
    parser.add_argument(
        "--key-type",
        choices=[kind.value for kind in KeyType],
        default=KeyType.ECDSA.value,
        help="the responder's and clients' keys (default: ecdsa, P-256)",
    )
    parser.add_argument(
        "--rsa-bits", type=int, default=DEFAULT_RSA_BITS, metavar="N", help="RSA key size (default: 3072)"
    )
    parser.add_argument(
        "--responder-id",
        metavar="NAME",
        default=DEFAULT_RESPONDER_ID,
        help=f"the responder's ID and first SAN, a DNS name or IP address (default: {DEFAULT_RESPONDER_ID})",
    )
    parser.add_argument(
        "--san",
        action="append",
        metavar="SAN",
        help="another responder SAN: DNS:NAME, IP:ADDRESS, email:ADDRESS or bare (repeatable; "
        "default: IP:127.0.0.1 and IP:::1)",
    )
    parser.add_argument(
        "--no-responder", action="store_true", help="no responder certificate (add clients to a CA)"
    )
    parser.add_argument(
        "--client",
        action="append",
        metavar="NAME",
        help="a client certificate with the SAN NAME@lab, or NAME if it has an @ (repeatable; "
        "default: client1)",
    )
    parser.add_argument(
        "--days", type=int, default=DEFAULT_DAYS, metavar="N", help="validity of the leaves (default: 365)"
    )
    parser.add_argument("--force", action="store_true", help="replace existing files and make a new CA")
    parser.add_argument(
        "--p12-password", metavar="PASSWORD", help="one password for every PKCS#12 bundle (default: random)"
    )
    return parser


def _request(args: argparse.Namespace) -> PkiRequest:
    """The request the flags make; :class:`PkiError` for a value no certificate can carry."""
    request = PkiRequest(
        directory=args.dir,
        key_type=KeyType(args.key_type),
        rsa_bits=args.rsa_bits,
        responder_id=None if args.no_responder else args.responder_id,
        sans=tuple(args.san) if args.san is not None else DEFAULT_SANS,
        clients=tuple(args.client) if args.client is not None else ("client1",),
        days=args.days,
        force=args.force,
        p12_password=args.p12_password,
    )
    if request.responder_id is not None:
        if isinstance(parse_san(request.responder_id), x509.RFC822Name):
            raise PkiError(f"--responder-id {request.responder_id}: a DNS name or an IP address")
        for text in request.sans:
            parse_san(text)
    for name in request.clients:
        check_client(name)
    if len(set(request.clients)) != len(request.clients):
        raise PkiError("--client: each name once")
    if request.responder_id is None and not request.clients:
        raise PkiError("nothing to make: --no-responder and no --client")
    return request


def main(argv: Sequence[str], *, out: TextIO | None = None, now: datetime.datetime | None = None) -> int:
    """``ikev2-responder certs [flags]`` (``argv`` without ``certs``); returns the exit status.

    ``now`` (default: the wall clock) is when the certificates' validity starts, minus one hour.
    """
    output = out or sys.stdout
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        request = _request(args)
    except PkiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        pki = issue(request, now or datetime.datetime.now(datetime.UTC))
        write(pki)
    except PkiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error.filename or request.directory}: {error.strerror or error}", file=sys.stderr)
        return 1
    output.write(render_report(pki))
    return 0
