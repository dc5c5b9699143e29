"""The Wireshark key log: IKE and ESP keys in the two tables tshark reads (lab use only).

Strategy: :class:`KeyLog` is an :class:`~responder.server.contracts.EventObserver`.
The core's :class:`~responder.core.events.IkeSaEstablished` and
:class:`~responder.core.events.ChildSaEstablished` events carry the keys
(``repr=False``) and the transform names; each becomes lines in one of the two
files Wireshark reads from its configuration directory, so that
``WIRESHARK_CONFIG_DIR=DIRECTORY tshark -o esp.enable_encryption_decode:TRUE ...``
(or copying the two files into a Wireshark profile) decrypts a capture:

* ``ikev2_decryption_table``: one line per IKE SA, as it is established
  (an IKE SA rekeyed later has new SPIs and appends a line of its own)::

    SPIi,SPIr,SK_ei,SK_er,"<encryption>",SK_ai,SK_ar,"<integrity>"

  SPIs as 16 hex digits; for AES-GCM the SK_e* include the 4-octet salt
  (RFC 5282 §7.1), the SK_a* are empty and the integrity is ``"NONE [RFC4306]"``;
* ``esp_sa``: one line per direction of each Child SA::

    "IPv4","<src>","<dst>","0x<SPI>","<encryption>","0x<key>","<authentication>","0x<key>"

  inbound (remote -> local, our inbound SPI) first, then outbound (local ->
  remote).  AES-GCM keys include the salt (RFC 4106 §8.1) and take the
  authentication ``"NULL"``, the only one tshark 4.0 accepts with GCM.
  Addresses come from the path of the SA; an unspecified local address (a
  wildcard UDP socket) or an unknown path is written as tshark's wildcard ``*``
  (with no path at all, one line per address family).  IPv4-mapped IPv6
  addresses are written as the IPv4 addresses they are on the wire.

The transform names are exactly those tshark 4.0 accepts (checked against
tshark 4.0.17 and the captures in ``tests/vectors/strongswan/``).
tshark 4.0 has no ChaCha20-Poly1305 in either table and refuses a line naming
an unknown algorithm with an error on every start, so SAs using ChaCha20-Poly1305
are **not written**: the first one is reported with a warning, the others at
debug level.  Negotiate AES-GCM or AES-CBC to decrypt a capture.  ESN is not
expressible in tshark 4.0's ``esp_sa`` (it decrypts, but cannot check ICVs of
ESN Child SAs).

Files are created with mode 0600 in a directory created with mode 0700 (the
TLS listeners' NSS key log, written by :mod:`ssl` beside them, relies on that
directory mode), opened with ``O_APPEND`` and never truncated: a restarted
server adds to what is there.  Lines go out unbuffered with ``write(2)`` (the
two of a Child SA in one call), so they reach the file at once and a capture
can be decrypted while the server runs.  Key material goes to these files
only; log lines name SPIs, never keys.  A write error is logged once per file
and never reaches the engine.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path as FilePath
from types import MappingProxyType, TracebackType
from typing import Final

from responder.core.events import ChildSaEstablished, Event, IkeSaEstablished
from responder.core.path import Path

__all__ = [
    "ESP_ENCRYPTION",
    "ESP_INTEGRITY",
    "ESP_TABLE",
    "IKE_ENCRYPTION",
    "IKE_INTEGRITY",
    "IKE_TABLE",
    "KeyLog",
    "NotDecryptable",
    "esp_lines",
    "ike_line",
]

logger = logging.getLogger("responder.server.keylog")

IKE_TABLE: Final = "ikev2_decryption_table"  #: Wireshark's "IKEv2 Decryption Table" UAT file
ESP_TABLE: Final = "esp_sa"  #: Wireshark's "ESP SAs" UAT file

#: ``Encryption.name`` (as in the events) -> tshark 4.0's IKEv2 table name.
IKE_ENCRYPTION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "AES_GCM_16-128": "AES-GCM-128 with 16 octet ICV [RFC5282]",
        "AES_GCM_16-256": "AES-GCM-256 with 16 octet ICV [RFC5282]",
        "AES_CBC-128": "AES-CBC-128 [RFC3602]",
        "AES_CBC-192": "AES-CBC-192 [RFC3602]",
        "AES_CBC-256": "AES-CBC-256 [RFC3602]",
    }
)
#: ``Integrity.name`` (``None`` for AEAD) -> tshark 4.0's IKEv2 table name.
IKE_INTEGRITY: Final[Mapping[str | None, str]] = MappingProxyType(
    {
        None: "NONE [RFC4306]",
        "HMAC_SHA1_96": "HMAC_SHA1_96 [RFC2404]",
        "HMAC_SHA2_256_128": "HMAC_SHA2_256_128 [RFC4868]",
        "HMAC_SHA2_384_192": "HMAC_SHA2_384_192 [RFC4868]",
        "HMAC_SHA2_512_256": "HMAC_SHA2_512_256 [RFC4868]",
    }
)
#: ``Encryption.name`` -> tshark 4.0's ESP SA name (the key length is implied by the key).
ESP_ENCRYPTION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "AES_GCM_16-128": "AES-GCM with 16 octet ICV [RFC4106]",
        "AES_GCM_16-256": "AES-GCM with 16 octet ICV [RFC4106]",
        "AES_CBC-128": "AES-CBC [RFC3602]",
        "AES_CBC-192": "AES-CBC [RFC3602]",
        "AES_CBC-256": "AES-CBC [RFC3602]",
    }
)
#: ``Integrity.name`` (``None`` for AEAD) -> tshark 4.0's ESP SA name.
ESP_INTEGRITY: Final[Mapping[str | None, str]] = MappingProxyType(
    {
        None: "NULL",
        "HMAC_SHA1_96": "HMAC-SHA-1-96 [RFC2404]",
        "HMAC_SHA2_256_128": "HMAC-SHA-256-128 [RFC4868]",
        "HMAC_SHA2_384_192": "HMAC-SHA-384-192 [RFC4868]",
        "HMAC_SHA2_512_256": "HMAC-SHA-512-256 [RFC4868]",
    }
)


class NotDecryptable(ValueError):
    """The SA uses a transform tshark 4.0 cannot decrypt; ``transform`` names it."""

    def __init__(self, transform: str) -> None:
        super().__init__(f"tshark 4.0 cannot decrypt {transform}")
        self.transform = transform


def _names(
    encryption: str,
    integrity: str | None,
    encryptions: Mapping[str, str],
    integrities: Mapping[str | None, str],
) -> tuple[str, str]:
    if encryption not in encryptions:
        raise NotDecryptable(encryption)
    if integrity not in integrities:
        raise NotDecryptable(integrity or "AEAD without integrity")
    return encryptions[encryption], integrities[integrity]


def ike_line(event: IkeSaEstablished) -> str:
    """The ``ikev2_decryption_table`` line of an IKE SA; :class:`NotDecryptable` for ChaCha20 & co."""
    encryption, integrity = _names(event.encryption_name, event.integrity_name, IKE_ENCRYPTION, IKE_INTEGRITY)
    keys = event.keys
    return (
        f"{event.spi_i.hex()},{event.spi_r.hex()},{keys.sk_ei.hex()},{keys.sk_er.hex()},"
        f'"{encryption}",{keys.sk_ai.hex()},{keys.sk_ar.hex()},"{integrity}"'
    )


def _wire_address(address: IPv4Address | IPv6Address) -> IPv4Address | IPv6Address | None:
    """The address as it is on the wire (IPv4-mapped -> IPv4); ``None`` for an unspecified one."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return None if address.is_unspecified else address


def _esp_line(
    family: str, src: str, dst: str, spi: bytes, names: tuple[str, str], keys: tuple[bytes, bytes]
) -> str:
    return (
        f'"{family}","{src}","{dst}","0x{spi.hex()}","{names[0]}","0x{keys[0].hex()}",'
        f'"{names[1]}","0x{keys[1].hex()}"'
    )


def esp_lines(event: ChildSaEstablished, path: Path | None) -> tuple[str, ...]:
    """The ``esp_sa`` lines of a Child SA: inbound (remote -> local), then outbound.

    ``path`` is the IKE SA's path as the engine reports it (local = this
    responder).  The keys of each direction follow RFC 7296 §2.17: ``*_i``
    protect what the initiator of the exchange sends.  Raises
    :class:`NotDecryptable` for transforms tshark 4.0 lacks.
    """
    names = _names(event.encryption_name, event.integrity_name, ESP_ENCRYPTION, ESP_INTEGRITY)
    keys = event.keys
    # ``initiated``: we sent the request of the exchange that made the pair (IKE_AUTH, CREATE_CHILD_SA).
    if event.initiated:
        inbound_keys = (keys.encryption_r, keys.integrity_r)
        outbound_keys = (keys.encryption_i, keys.integrity_i)
    else:
        inbound_keys = (keys.encryption_i, keys.integrity_i)
        outbound_keys = (keys.encryption_r, keys.integrity_r)
    if path is None:
        ends: list[tuple[str, str, str]] = [("IPv4", "*", "*"), ("IPv6", "*", "*")]
    else:
        local, remote = _wire_address(path.local_address), _wire_address(path.remote_address)
        known = local or remote
        version = known.version if known is not None else path.remote_address.version
        ends = [(f"IPv{version}", str(local or "*"), str(remote or "*"))]
    lines = []
    for family, local_text, remote_text in ends:
        lines.append(_esp_line(family, remote_text, local_text, event.inbound_spi, names, inbound_keys))
        lines.append(_esp_line(family, local_text, remote_text, event.outbound_spi, names, outbound_keys))
    return tuple(lines)


def _open_append(path: FilePath) -> int:
    """``path`` opened for appending: created 0600, never truncated, never through a symlink."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(exc.errno, "refusing to write keys through a symbolic link", str(path)) from None
        raise
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if status.st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
            logger.warning("key log %s was readable by others; its mode is now 0600", path)
        if status.st_size and os.pread(descriptor, 1, status.st_size - 1) != b"\n":
            os.write(descriptor, b"\n")  # a line cut short earlier must not swallow the next one
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class KeyLog:
    """Writes ``ikev2_decryption_table`` and ``esp_sa`` into ``directory`` (see the module doc).

    Opening raises :class:`OSError` when the directory or files cannot be
    created; afterwards nothing raises: :meth:`observe` logs what it cannot do.
    """

    def __init__(self, directory: FilePath) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_mode & 0o077:
            logger.warning(
                "key log directory %s is accessible by other users: the TLS key log written there "
                "may be readable by them (chmod 700 it)",
                directory,
            )
        self._files: dict[str, int] = {}
        try:
            for name in (IKE_TABLE, ESP_TABLE):
                self._files[name] = _open_append(directory / name)
        except BaseException:
            self.close()
            raise
        self._failed: set[str] = set()
        self._reported: set[str] = set()
        self.lines_written = 0  #: lines written to both files since opening
        logger.warning("key log on: IKE and ESP keys are written to %s (lab use only)", directory)

    def observe(self, event: Event, path: Path | None) -> None:
        """Append the lines of an established IKE or Child SA; ignore every other event."""
        if isinstance(event, IkeSaEstablished):
            what = f"IKE SA {event.spi_i.hex()}/{event.spi_r.hex()}"
            try:
                lines: tuple[str, ...] = (ike_line(event),)
            except NotDecryptable as exc:
                self._skip(what, exc)
                return
            self._write(IKE_TABLE, lines, what)
        elif isinstance(event, ChildSaEstablished):
            what = f"Child SA {event.inbound_spi.hex()}/{event.outbound_spi.hex()}"
            try:
                lines = esp_lines(event, path)
            except NotDecryptable as exc:
                self._skip(what, exc)
                return
            if path is None:
                logger.debug("key log: %s has no known path; written with wildcard addresses", what)
            self._write(ESP_TABLE, lines, what)

    def close(self) -> None:
        """Close both files (idempotent); later events are ignored."""
        files, self._files = self._files, {}
        for descriptor in files.values():
            os.close(descriptor)

    def __enter__(self) -> KeyLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _skip(self, what: str, exc: NotDecryptable) -> None:
        if exc.transform in self._reported:
            logger.debug("key log: %s not written: %s", what, exc)
            return
        self._reported.add(exc.transform)
        logger.warning(
            "key log: %s not written: %s (SAs using it are left out; negotiate AES-GCM or AES-CBC "
            "to decrypt a capture)",
            what,
            exc,
        )

    def _write(self, name: str, lines: tuple[str, ...], what: str) -> None:
        descriptor = self._files.get(name)
        if descriptor is None:
            logger.debug("key log closed: %s not written", what)
            return
        data = "".join(line + "\n" for line in lines).encode("ascii")
        try:
            while data:
                written = os.write(descriptor, data)  # O_APPEND: each write lands at the end
                data = data[written:]
        except OSError as exc:
            if name not in self._failed:
                self._failed.add(name)
                logger.error(
                    "key log: cannot write %s: %s; %s and later lines may be lost",
                    self.directory / name,
                    exc.strerror or exc,
                    what,
                )
            return
        self.lines_written += len(lines)
        logger.debug("key log: %s written to %s", what, name)
