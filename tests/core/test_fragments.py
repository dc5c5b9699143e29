"""RFC 7383 fragments alone: sizes, the SKF layout, splitting, and reassembly within its bounds.

Rows E3 (SKF last, numbering, Next Payload of fragment 1 only, IKE header
copied) and E4 (checks before reassembly, ICV of every fragment, timeout,
a larger Total Fragments starts over, memory bounded) of
responder-requirements.md section E; the message layer's use of them is in
``test_message_layer.py``, whole exchanges in ``test_fragmentation.py``.
Pure and deterministic: fixed keys, seeded IVs, explicit ``now``.
"""

from __future__ import annotations

from ipaddress import ip_address

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responder.core.config import Limits
from responder.core.enums import EncrId, ExchangeType, IntegId, PayloadType
from responder.core.errors import ConfigError, IntegrityCheckFailed, LocalError
from responder.core.fragments import (
    FragmentNotice,
    Reassembled,
    Reassembler,
    chunk_capacity,
    datagram_budget,
    split,
    whole_head,
)
from responder.core.messages import EncryptedFragmentPayload, Header, decode_message
from responder.core.path import Path, Transport
from responder.core.sk_payload import SkProtection, decrypt, protect_bytes, protect_fragment, sk_head
from responder.core.transforms import encryption, integrity
from tests.fakes.pair import seeded

HEADER = Header(
    spi_i=bytes.fromhex("0102030405060708"),
    spi_r=bytes.fromhex("1112131415161718"),
    exchange_type=ExchangeType.IKE_AUTH,
    is_initiator=True,
    is_response=False,
    message_id=1,
)


def gcm() -> SkProtection:
    return SkProtection.create(encryption(EncrId.AES_GCM_16, 128), None, bytes(range(20)))


def cbc() -> SkProtection:
    return SkProtection.create(
        encryption(EncrId.AES_CBC, 128), integrity(IntegId.HMAC_SHA2_256_128), bytes(16), bytes(range(32))
    )


def udp(remote: str = "192.0.2.1", local_port: int = 4500, remote_port: int = 4500) -> Path:
    local = "192.0.2.2" if ":" not in remote else "2001:db8::2"
    return Path(Transport.UDP, ip_address(local), local_port, ip_address(remote), remote_port)


# ----------------------------------------------------------------------------- sizes (§2.5.1, App. B)


def test_datagram_budget_subtracts_ip_udp_and_the_non_esp_marker_rfc7383_appendix_b() -> None:
    """RFC 7383 Appendix B: IPv4 header 20, IPv6 40, UDP 8, non-ESP marker 4 off port 500."""
    assert datagram_budget(udp(), 1280) == 1280 - 20 - 8 - 4
    assert datagram_budget(udp(local_port=500, remote_port=500), 576) == 576 - 20 - 8
    assert datagram_budget(udp("2001:db8::1", 500, 500), 1280) == 1280 - 40 - 8
    assert datagram_budget(udp("2001:db8::1"), 1280) == 1280 - 40 - 8 - 4


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS])
def test_no_budget_on_streams_row_a57(transport: Transport) -> None:
    """Row A57 (RFC 9329 §7.5): nothing is fragmented over TCP or TLS."""
    path = Path(transport, ip_address("192.0.2.2"), 4500, ip_address("192.0.2.1"), 40000, 1)
    assert datagram_budget(path, 576) is None


def test_chunk_capacity_leaves_room_for_headers_iv_icv_and_padding() -> None:
    """Appendix B's sum: IKE header 28, SKF header 8, IV, ICV, padding with its Pad Length octet."""
    # AES-GCM: IV 8, ICV 16, no block alignment: 500 - 28 - 8 - 8 - 16 - 1.
    assert chunk_capacity(gcm(), 500) == 439
    # AES-CBC + HMAC-SHA-256-128: IV 16, ICV 16, 16-octet blocks: 500 - 68 = 432 = 27 blocks,
    # less the Pad Length octet.
    assert chunk_capacity(cbc(), 500) == 431
    with pytest.raises(LocalError):
        chunk_capacity(gcm(), 60)


def test_fragment_size_is_validated() -> None:
    with pytest.raises(ConfigError, match="fragment_size"):
        Limits(fragment_size=100)
    with pytest.raises(ConfigError, match="reassembly_timeout"):
        Limits(reassembly_timeout=0)
    assert Limits().fragment_size == 1280


# ----------------------------------------------------------------------------- the SKF layout (§2.5)


def test_skf_layout_byte_for_byte_rfc7383_2_5_row_e3() -> None:
    """Row E3: IKE header intact but Next Payload (53) and Length; SKF generic header, Fragment
    Number, Total Fragments, then IV; Next Payload names the first inner payload in fragment 1 only."""
    protection = gcm()
    iv = bytes(range(8))
    first = protect_fragment(protection, HEADER, PayloadType.IDi, 1, 3, b"\x01\x02\x03", iv)
    second = protect_fragment(protection, HEADER, PayloadType.IDi, 2, 3, b"\x04", iv)
    skf_length = 8 + 8 + 3 + 1 + 16  # header, IV, content + Pad Length, ICV
    assert first[:16] == HEADER.spi_i + HEADER.spi_r
    assert first[16:28] == bytes([53, 0x20, 35, 0x08]) + (1).to_bytes(4, "big") + (28 + skf_length).to_bytes(
        4, "big"
    )
    assert first[28:36] == bytes.fromhex("2300") + skf_length.to_bytes(2, "big") + bytes.fromhex("0001 0003")
    assert first[36:44] == iv
    assert second[28:36] == bytes.fromhex("0000") + (skf_length - 2).to_bytes(2, "big") + bytes.fromhex(
        "0002 0003"
    )
    decoded = decode_message(first)
    skf = decoded.payloads[-1]
    assert isinstance(skf, EncryptedFragmentPayload)
    assert (skf.fragment_number, skf.total_fragments, skf.first_inner_payload) == (1, 3, PayloadType.IDi)
    assert decrypt(protection, first).plaintext == b"\x01\x02\x03"
    with pytest.raises(LocalError):
        protect_fragment(protection, HEADER, PayloadType.IDi, 4, 3, b"", iv)


@pytest.mark.parametrize("make", [gcm, cbc])
def test_every_fragments_icv_is_its_own_rfc7383_2_6(make: object) -> None:
    """Row E4: a fragment with one bit flipped fails its own integrity check (AEAD tag or HMAC;
    the AEAD authenticates Fragment Number and Total Fragments too)."""
    assert callable(make)
    protection: SkProtection = make()
    data = protect_fragment(
        protection, HEADER, PayloadType.IDi, 1, 2, b"x" * 40, bytes(protection.encryption.iv_size)
    )
    assert decrypt(protection, data).plaintext == b"x" * 40
    # Total Fragments 2 -> 3 (still decodes), the IV, the ciphertext, the ICV.
    for position in (35, 37, len(data) - 20, len(data) - 1):
        forged = bytearray(data)
        forged[position] ^= 1
        with pytest.raises(IntegrityCheckFailed):
            decrypt(protection, bytes(forged))


# ----------------------------------------------------------------------------- splitting


def test_a_message_that_fits_is_not_split() -> None:
    protection = gcm()
    budget = datagram_budget(udp(), 576)
    assert budget is not None
    inner = b"a" * (budget - 28 - 4 - 8 - 16 - 1)  # exactly one datagram as a whole SK message
    assert split(protection, HEADER, PayloadType.IDi, inner, budget, seeded(1)) is None
    fragments = split(protection, HEADER, PayloadType.IDi, inner + b"b", budget, seeded(1))
    assert fragments is not None and len(fragments) == 2


@pytest.mark.parametrize("make", [gcm, cbc])
@given(size=st.integers(0, 5000), fragment_size=st.integers(256, 1500))
@settings(max_examples=60, deadline=None)
def test_split_fragments_fit_and_carry_the_whole_content(make: object, size: int, fragment_size: int) -> None:
    """Row E3: every fragment fits the datagram, is numbered 1..Total with one Total, names the
    first inner payload in fragment 1 only, and the chunks join up to the original content."""
    assert callable(make)
    protection: SkProtection = make()
    inner = bytes(i % 251 for i in range(size))
    budget = datagram_budget(udp(), fragment_size)
    assert budget is not None
    fragments = split(protection, HEADER, PayloadType.IDi, inner, budget, seeded(size))
    if fragments is None:
        assert (
            len(
                protect_bytes(
                    protection, HEADER, PayloadType.IDi, inner, bytes(protection.encryption.iv_size)
                )
            )
            <= budget
        )
        return
    joined = b""
    for number, data in enumerate(fragments, start=1):
        assert len(data) <= budget
        skf = decode_message(data).payloads[-1]
        assert isinstance(skf, EncryptedFragmentPayload)
        assert (skf.fragment_number, skf.total_fragments) == (number, len(fragments))
        assert skf.first_inner_payload == (PayloadType.IDi if number == 1 else PayloadType.NONE)
        joined += decrypt(protection, data).plaintext
    assert joined == inner


# ----------------------------------------------------------------------------- reassembly


def limits(**kwargs: object) -> Limits:
    return Limits(**kwargs)  # type: ignore[arg-type]


def pieces(total: int, message_id: int = 1, size: int = 10) -> list[tuple[EncryptedFragmentPayload, bytes]]:
    """``total`` fragments (as decoded) and their decrypted chunks."""
    return [
        (
            EncryptedFragmentPayload(PayloadType.IDi if n == 1 else PayloadType.NONE, n, total, b""),
            bytes([n]) * size,
        )
        for n in range(1, total + 1)
    ]


def feed(
    reassembler: Reassembler,
    fragment: EncryptedFragmentPayload,
    chunk: bytes,
    now: float = 0.0,
    header: Header = HEADER,
) -> Reassembled | FragmentNotice:
    early = reassembler.precheck(header, fragment)
    if early is not None:
        return early
    return reassembler.add(header, fragment, (), chunk, b"fragment %d" % fragment.fragment_number, now)


def test_reassembly_in_order_gives_the_message_rfc7383_2_6() -> None:
    reassembler = Reassembler(limits())
    results = [feed(reassembler, *piece) for piece in pieces(3)]
    assert [r.kept for r in results[:2] if isinstance(r, FragmentNotice)] == [True, True]
    whole = results[2]
    assert isinstance(whole, Reassembled)
    assert whole.plaintext == b"\x01" * 10 + b"\x02" * 10 + b"\x03" * 10
    assert whole.first_inner is PayloadType.IDi
    assert whole.first_fragment == b"fragment 1"
    assert len(reassembler) == 0 and reassembler.reassembled == 1


def test_a_fragment_held_already_is_a_replay_rfc7383_2_6() -> None:
    """Row E4: same Message ID, Fragment Number and Total Fragments: discarded before the ICV."""
    reassembler = Reassembler(limits())
    first, second = pieces(2)
    assert isinstance(feed(reassembler, *first), FragmentNotice)
    again = reassembler.precheck(HEADER, first[0])
    assert again is not None and not again.authenticated and "replay" in again.reason
    assert isinstance(feed(reassembler, *second), Reassembled)


def test_a_smaller_total_is_discarded_and_a_larger_one_starts_over_rfc7383_2_6() -> None:
    """Row E4: Total Fragments below the set's is discarded; above it (PMTU discovery, §2.5.2)
    the fragments held are dropped and reassembly starts over with the new one."""
    reassembler = Reassembler(limits())
    feed(reassembler, *pieces(3)[0])
    smaller = feed(reassembler, *pieces(2)[1])
    assert isinstance(smaller, FragmentNotice) and not smaller.kept and not smaller.authenticated
    larger = pieces(4, size=5)
    for piece in larger[:3]:
        assert isinstance(feed(reassembler, *piece), FragmentNotice)
    whole = feed(reassembler, *larger[3])
    assert isinstance(whole, Reassembled) and whole.total == 4
    assert whole.plaintext == b"".join(chunk for _, chunk in larger)


def test_too_many_fragments_are_refused_before_the_icv() -> None:
    """``fragments_max``: a Total Fragments above it is discarded before any work."""
    reassembler = Reassembler(limits(fragments_max=4))
    notice = reassembler.precheck(HEADER, pieces(5)[0][0])
    assert notice is not None and "fragments_max" in notice.reason
    assert len(reassembler) == 0


def test_a_message_larger_than_reassembly_size_max_is_dropped() -> None:
    reassembler = Reassembler(limits(reassembly_size_max=25))
    first, second, third = pieces(3)
    feed(reassembler, *first)
    feed(reassembler, *second)
    notice = feed(reassembler, *third)
    assert isinstance(notice, FragmentNotice) and "reassembly_size_max" in notice.reason
    assert len(reassembler) == 0  # the whole set goes: it can never complete


def test_an_incomplete_set_times_out_rfc7383_2_6() -> None:
    """Row E4: the reassembly timer starts with the first fragment; ``expire`` drops the set."""
    reassembler = Reassembler(limits(reassembly_timeout=5.0))
    assert reassembler.get_timer() is None
    feed(reassembler, *pieces(2)[0], now=10.0)
    assert reassembler.get_timer() == 15.0
    assert reassembler.expire(14.9) == []
    [reason] = reassembler.expire(15.0)
    assert "1 of 2 IKE fragments" in reason
    assert reassembler.get_timer() is None and len(reassembler) == 0


def test_sets_at_once_are_bounded_the_oldest_goes() -> None:
    """``reassemblies_per_sa``: a new set beyond it pushes out the oldest."""
    reassembler = Reassembler(limits(reassemblies_per_sa=2))
    for message_id in (1, 2, 3):
        header = attrs.evolve(HEADER, message_id=message_id)
        feed(reassembler, *pieces(2)[0], now=float(message_id), header=header)
    assert len(reassembler) == 2
    assert reassembler.get_timer() == 2.0 + Limits().reassembly_timeout  # set 1 is gone


def test_whole_head_is_the_unfragmented_header_rfc9242_3_3_2() -> None:
    """RFC 9242 §3.3.2: a reassembled message's header and SK header as if it came whole."""
    protection = gcm()
    whole = Reassembled(HEADER, (), PayloadType.IDi, b"x" * 100, b"", critical=False, total=3)
    assert whole_head(protection, whole) == sk_head(protection, HEADER, PayloadType.IDi, 100)


# ----------------------------------------------------------------------------- properties

FRAGMENT_EVENTS = st.lists(
    st.tuples(st.sampled_from([2, 3, 4, 6]), st.integers(1, 6)),  # (Total Fragments, Fragment Number)
    max_size=40,
)


@given(events=FRAGMENT_EVENTS, fragments_max=st.integers(1, 8), size_max=st.integers(10, 80))
@settings(max_examples=300, deadline=None)
def test_reassembly_never_mixes_sets_and_stays_bounded(
    events: list[tuple[int, int]], fragments_max: int, size_max: int
) -> None:
    """Any order, duplicates, gaps, several Total Fragments (inconsistent sets), too many, too large:
    whatever completes is exactly one set's content, and what is held never exceeds the bounds."""
    reassembler = Reassembler(limits(fragments_max=fragments_max, reassembly_size_max=size_max))
    for total, number in events:
        if number > total:
            continue
        fragment = EncryptedFragmentPayload(
            PayloadType.IDi if number == 1 else PayloadType.NONE, number, total, b""
        )
        chunk = bytes([total]) * (number + 2)  # a chunk says which set and which fragment it is
        result = feed(reassembler, fragment, chunk)
        if total > fragments_max:
            assert isinstance(result, FragmentNotice) and not result.kept
        if isinstance(result, Reassembled):
            assert result.total == total <= fragments_max
            assert result.plaintext == b"".join(bytes([total]) * (n + 2) for n in range(1, total + 1))
            assert len(result.plaintext) <= size_max
        assert len(reassembler) <= 1  # one Message ID here


@given(order=st.permutations(range(5)), copies=st.lists(st.integers(0, 4), max_size=6))
@settings(max_examples=100, deadline=None)
def test_any_order_with_duplicates_reassembles_once(order: list[int], copies: list[int]) -> None:
    """Any order of arrival, with repeated fragments mixed in: exactly one message, the right one."""
    reassembler = Reassembler(limits())
    all_pieces = pieces(5)
    arrivals = list(order)
    for index, copy in enumerate(copies):
        arrivals.insert(min(index * 2 + 1, len(arrivals)), copy)
    results = [feed(reassembler, *all_pieces[i]) for i in arrivals]
    complete = [index for index, r in enumerate(results) if isinstance(r, Reassembled)]
    # The message completes exactly when the last missing fragment arrives ...
    first_full = next(i for i in range(len(arrivals)) if set(arrivals[: i + 1]) == set(range(5)))
    assert complete[0] == first_full
    # ... and carries every chunk once, in Fragment Number order.
    for index in complete:
        result = results[index]
        assert isinstance(result, Reassembled)
        assert result.plaintext == b"".join(c for _, c in all_pieces)
