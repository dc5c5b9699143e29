"""IKE fragmentation (RFC 7383): our protected messages split into fragments, the peer's put together.

Strategy: two pure pieces that the message layer of an IKE SA uses once the
SA negotiated fragmentation (RFC 7383 §2.3); neither reads a clock (``now``
is handed in) nor draws randomness (IVs come from the caller's
``random_bytes``).

* **Splitting** (§2.5, §2.5.1): :func:`datagram_budget` says how many octets
  of IKE message fit one UDP datagram of ``fragment_size`` octets on a path
  (IP header, UDP header and, off port 500, the non-ESP marker subtracted,
  as Appendix B counts them), and ``None`` over TCP and TLS, where nothing
  is ever fragmented (RFC 9329 §7.5, row A57).  :func:`split` cuts the
  plaintext of the inner payloads, regardless of payload boundaries, into
  the largest chunks that fit, and protects each chunk on its own as an SKF
  payload (:func:`~responder.core.sk_payload.protect_fragment`): fragment 1
  names the first inner payload, the others 0.
* **Reassembling** (§2.6): a :class:`Reassembler` keeps, per Message ID and
  direction, the decrypted chunks of fragments whose ICV verified.  The
  caller checks the ICV (it holds the keys); the reassembler applies the
  rest of §2.6 in the RFC's order: a Total Fragments smaller than the set's
  is discarded (:meth:`Reassembler.precheck`), so is a fragment already held
  (a replay), and a larger one (a PMTU retry, §2.5.2) starts the set over
  (:meth:`Reassembler.add`).  Its bounds, from
  :class:`~responder.core.config.Limits`, keep a hostile peer from making us
  hold memory: ``fragments_max`` fragments and ``reassembly_size_max``
  octets per message, ``reassemblies_per_sa`` messages at once (a new one
  pushes out the oldest), and ``reassembly_timeout`` seconds from a set's
  first fragment (:meth:`Reassembler.get_timer`, :meth:`Reassembler.expire`),
  after which the responder "acts as if no request message was received".
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from responder.core.config import Limits
from responder.core.enums import PayloadType
from responder.core.errors import LocalError
from responder.core.messages import EncryptedFragmentPayload, Header, Payload, encode_header, encode_payload
from responder.core.path import Path
from responder.core.sk_payload import (
    IKE_HEADER_SIZE,
    SKF_HEADER_SIZE,
    SkProtection,
    protect_fragment,
    sk_length,
)

__all__ = [
    "IPV4_HEADER_SIZE",
    "IPV6_HEADER_SIZE",
    "NON_ESP_MARKER_SIZE",
    "UDP_HEADER_SIZE",
    "FragmentNotice",
    "Reassembled",
    "Reassembler",
    "chunk_capacity",
    "datagram_budget",
    "split",
    "whole_head",
]

IPV4_HEADER_SIZE = 20  #: without options (RFC 7383 Appendix B)
IPV6_HEADER_SIZE = 40  #: without extension headers (RFC 7383 Appendix B)
UDP_HEADER_SIZE = 8
NON_ESP_MARKER_SIZE = 4  #: RFC 3948 §2.2, on every port but 500


def datagram_budget(path: Path, fragment_size: int) -> int | None:
    """Octets of IKE message one IP datagram of ``fragment_size`` octets carries on ``path``
    (RFC 7383 §2.5.1, Appendix B); ``None`` on TCP and TLS, where we never fragment (RFC 9329
    §7.5, row A57).

    The non-ESP marker is counted unless both ports are 500 (the shell adds
    it on every other port).
    """
    if path.transport.is_stream:
        return None
    ip = IPV4_HEADER_SIZE if path.remote_address.version == 4 else IPV6_HEADER_SIZE
    marker = 0 if path.local_port == 500 and path.remote_port == 500 else NON_ESP_MARKER_SIZE
    return fragment_size - ip - UDP_HEADER_SIZE - marker


def chunk_capacity(protection: SkProtection, budget: int) -> int:
    """The most octets of inner payloads one IKE Fragment message of at most ``budget`` octets
    carries (RFC 7383 §2.5, Appendix B): what is left after the IKE header, the SKF header, the IV,
    the ICV and the padding to the cipher's block with its Pad Length octet."""
    encryption = protection.encryption
    room = budget - IKE_HEADER_SIZE - SKF_HEADER_SIZE - encryption.iv_size - protection.icv_size
    capacity = room // encryption.block_size * encryption.block_size - 1
    if capacity < 1:
        raise LocalError(f"a fragment of {budget} octets has no room for content with {encryption.name}")
    return capacity


def split(
    protection: SkProtection,
    header: Header,
    first_inner: PayloadType,
    inner: bytes,
    budget: int,
    random_bytes: Callable[[int], bytes],
) -> tuple[bytes, ...] | None:
    """The IKE Fragment messages that carry ``inner`` (the encoded inner payloads) when the whole
    protected message would exceed ``budget`` octets, each encrypted with its own IV (RFC 7383
    §2.5); ``None`` when the whole message fits, so it goes unfragmented."""
    if IKE_HEADER_SIZE + sk_length(protection, len(inner)) <= budget:
        return None
    capacity = chunk_capacity(protection, budget)
    chunks = [inner[start : start + capacity] for start in range(0, len(inner), capacity)]
    total = len(chunks)
    if total > 0xFFFF:
        raise LocalError(f"{len(inner)} octets need {total} fragments, more than Total Fragments holds")
    iv_size = protection.encryption.iv_size
    return tuple(
        protect_fragment(protection, header, first_inner, number, total, chunk, random_bytes(iv_size))
        for number, chunk in enumerate(chunks, start=1)
    )


@attrs.frozen(slots=True)
class FragmentNotice:
    """What became of one IKE Fragment message that completed nothing: ``kept`` for reassembly, or
    discarded for ``reason`` (RFC 7383 §2.6: "silently discarded"; logged and counted here)."""

    reason: str
    authenticated: bool
    kept: bool = False


@attrs.frozen(slots=True)
class Reassembled:
    """A message whose fragments all arrived and verified (RFC 7383 §2.6).

    ``plaintext`` is the original Encrypted payload's inner chain, the
    chunks in Fragment Number order; ``outer`` the unprotected payloads
    fragment 1 carried before its SKF (§2.5.3); ``first_fragment`` fragment 1
    as it arrived (a bitwise copy of it is a retransmission, §2.6.1);
    ``critical`` fragment 1's SKF C bit (RFC 9242 §3.3.2 copies that octet
    into the reconstructed SK header, :func:`whole_head`).
    """

    header: Header
    outer: tuple[Payload, ...]
    first_inner: PayloadType
    plaintext: bytes
    first_fragment: bytes
    critical: bool
    total: int


@attrs.define(eq=False, slots=True)
class _Partial:
    """The fragments of one message received so far (a reassembling queue, RFC 7383 §2.6)."""

    header: Header
    total: int
    started_at: float
    chunks: dict[int, bytes] = attrs.Factory(dict)
    size: int = 0
    first_inner: PayloadType = PayloadType.NONE
    critical: bool = False
    outer: tuple[Payload, ...] = ()
    first_fragment: bytes = b""


#: A reassembling queue's key: (the peer's message is a response, its Message ID).
_Key = tuple[bool, int]


@attrs.define(eq=False, slots=True)
class Reassembler:
    """The peer's fragmented messages being put together, for one IKE SA (RFC 7383 §2.6)."""

    limits: Limits
    _sets: dict[_Key, _Partial] = attrs.Factory(dict)
    #: Fragments discarded and incomplete sets dropped since the SA began (for the log and stats).
    discarded: int = 0
    reassembled: int = 0

    def __len__(self) -> int:
        return len(self._sets)

    def precheck(self, header: Header, fragment: EncryptedFragmentPayload) -> FragmentNotice | None:
        """The checks of RFC 7383 §2.6 made before the ICV: ``None`` when the fragment is worth
        verifying, else why it is discarded (unauthenticated, never answered)."""
        number, total = fragment.fragment_number, fragment.total_fragments
        name = f"IKE fragment {number}/{total} of Message ID {header.message_id}"
        if total > self.limits.fragments_max:
            return self._discard(f"{name}: Total Fragments over fragments_max ({self.limits.fragments_max})")
        partial = self._sets.get((header.is_response, header.message_id))
        if partial is None:
            return None
        if partial.header.exchange_type != header.exchange_type:
            return self._discard(f"{name}: exchange type differs from the fragments held")
        if total < partial.total:
            return self._discard(
                f"{name}: Total Fragments below the {partial.total} of those held (RFC 7383 §2.6)"
            )
        if total == partial.total and number in partial.chunks:
            return self._discard(f"{name}: already held, a replay (RFC 7383 §2.6)")
        return None

    def add(
        self,
        header: Header,
        fragment: EncryptedFragmentPayload,
        outer: tuple[Payload, ...],
        chunk: bytes,
        data: bytes,
        now: float,
    ) -> Reassembled | FragmentNotice:
        """Keep the decrypted ``chunk`` of a fragment whose ICV verified (and that passed
        :meth:`precheck`); the whole message once every fragment is in (RFC 7383 §2.6).

        ``outer`` holds the payloads before the SKF; ``data`` is the fragment as it arrived.
        """
        number, total = fragment.fragment_number, fragment.total_fragments
        name = f"IKE fragment {number}/{total} of Message ID {header.message_id}"
        key = (header.is_response, header.message_id)
        if number != 1 and outer:  # §2.5.3: unprotected payloads go in fragment 1 only
            return self._discard(
                f"{name}: payloads before the SKF outside fragment 1 (RFC 7383 §2.5.3)", True
            )
        limits = self.limits
        partial = self._sets.get(key)
        if partial is not None and (
            total > partial.total or partial.header.exchange_type != header.exchange_type
        ):
            # §2.6: a larger Total Fragments is a new set (PMTU discovery, §2.5.2): start over.
            del self._sets[key]
            partial = None
        if partial is None:
            if len(self._sets) >= limits.reassemblies_per_sa:
                oldest = min(self._sets, key=lambda k: self._sets[k].started_at)
                del self._sets[oldest]
                self.discarded += 1
            partial = self._sets[key] = _Partial(header, total, now)
        if number in partial.chunks:  # precheck() was skipped, or a copy under the same Total
            return self._discard(f"{name}: already held, a replay (RFC 7383 §2.6)", True)
        if partial.size + len(chunk) > limits.reassembly_size_max:
            del self._sets[key]
            return self._discard(
                f"{name}: the message would exceed reassembly_size_max ({limits.reassembly_size_max} octets)",
                True,
            )
        partial.chunks[number] = chunk
        partial.size += len(chunk)
        if number == 1:
            partial.first_inner = fragment.first_inner_payload
            partial.critical = fragment.critical
            partial.outer = outer
            partial.first_fragment = data
        if len(partial.chunks) < total:
            return FragmentNotice(f"{name} kept for reassembly", authenticated=True, kept=True)
        del self._sets[key]
        self.reassembled += 1
        plaintext = b"".join(partial.chunks[n] for n in range(1, total + 1))
        return Reassembled(
            partial.header,
            partial.outer,
            partial.first_inner,
            plaintext,
            partial.first_fragment,
            partial.critical,
            total,
        )

    def forget(self, is_response: bool, message_id: int) -> None:
        """Drop the fragments held for this message, if any (it was handled whole meanwhile)."""
        self._sets.pop((is_response, message_id), None)

    # ------------------------------------------------------------------ time

    def get_timer(self) -> float | None:
        """When the oldest incomplete set times out (``reassembly_timeout``, RFC 7383 §2.6)."""
        if not self._sets:
            return None
        return min(partial.started_at for partial in self._sets.values()) + self.limits.reassembly_timeout

    def expire(self, now: float) -> list[str]:
        """Drop every set older than ``reassembly_timeout``; why each went (RFC 7383 §2.6: the
        responder "acts as if no request message was received")."""
        timeout = self.limits.reassembly_timeout
        reasons = []
        for key, partial in list(self._sets.items()):
            if now >= partial.started_at + timeout:
                del self._sets[key]
                self.discarded += 1
                kind = "response" if partial.header.is_response else "request"
                reasons.append(
                    f"{partial.header.exchange_type.name} {kind} {partial.header.message_id}: "
                    f"{len(partial.chunks)} of {partial.total} IKE fragments after "
                    f"{timeout:g} s, dropped (RFC 7383 §2.6)"
                )
        return reasons

    def _discard(self, reason: str, authenticated: bool = False) -> FragmentNotice:
        self.discarded += 1
        return FragmentNotice(reason, authenticated)


def whole_head(protection: SkProtection, reassembled: Reassembled) -> bytes:
    """The IKE header, the unprotected payloads and the SK generic header of a reassembled message
    as if it had arrived whole (RFC 9242 §3.3.2): Next Payload and lengths of the unfragmented form
    (padded as we would pad it), the SK header's C bit and RESERVED octet from fragment 1's SKF."""
    outer = reassembled.outer
    types = [payload.payload_type for payload in outer[1:]] + [PayloadType.SK] if outer else []
    encoded = b"".join(
        encode_payload(payload, next_type) for payload, next_type in zip(outer, types, strict=True)
    )
    length = sk_length(protection, len(reassembled.plaintext))
    first = outer[0].payload_type if outer else PayloadType.SK
    header = encode_header(reassembled.header, first, IKE_HEADER_SIZE + len(encoded) + length)
    flags = 0x80 if reassembled.critical else 0
    return header + encoded + bytes([reassembled.first_inner, flags]) + length.to_bytes(2, "big")
