"""Byte, packet and sequence number lifetimes of Child SAs (RFC 4301 §4.4.2.1, RFC 4303 §3.3.3,
RFC 7296 §2.8): the soft limit starts the same CREATE_CHILD_SA rekey the timer starts, once; the
hard limit deletes the pair and what comes after it is dropped and counted."""

from __future__ import annotations

import pytest

from responder.core.config import ChildConfig, ConfigError, VolumeLifetime
from responder.core.echo import echo_request
from responder.core.enums import ExchangeType
from responder.core.esp import EspCounters
from responder.core.esp_limits import SEQUENCE_LIMIT, EspLimits, soft_sequence
from responder.core.events import ChildSaDeleted, ChildSaLimitReached, MessageSent
from responder.core.ike_sa import IkeSa, IkeSaState
from responder.core.replay import MAX_SEQ_32, MAX_SEQ_64
from tests.core.test_data_plane import ME, THEM, ping, tunnel
from tests.fakes.pair import Pair

SPI = b"\x00\x00\x10\x01"


def counted(octets: int, packets: int) -> EspCounters:
    return EspCounters(packets=packets, octets=octets)


# --------------------------------------------------------------------------- the configuration


def test_volume_lifetime_derives_the_hard_limit_as_strongswan_does() -> None:
    """swanctl.conf: life_bytes defaults to rekey_bytes + 10%; a hard limit alone keeps no soft one."""
    assert VolumeLifetime.derive(rekey_bytes=1000) == VolumeLifetime(1000, 1100, 0, 0)
    assert VolumeLifetime.derive(rekey_packets=50) == VolumeLifetime(0, 0, 50, 55)
    assert VolumeLifetime.derive(rekey_packets=3) == VolumeLifetime(0, 0, 3, 4)
    assert VolumeLifetime.derive(life_packets=70) == VolumeLifetime(0, 0, 0, 70)
    assert VolumeLifetime.derive(rekey_bytes=10, life_bytes=0) == VolumeLifetime(10, 0, 0, 0)
    assert not VolumeLifetime() and VolumeLifetime(life_packets=1)
    assert ChildConfig("net").volume == VolumeLifetime()  # off by default


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"rekey_bytes": 100, "life_bytes": 100}, "life_bytes"),
        ({"rekey_packets": 9, "life_packets": 5}, "life_packets"),
        ({"rekey_bytes": -1}, "rekey_bytes"),
        ({"life_packets": 1.5}, "life_packets"),
        ({"rekey_packets": True}, "rekey_packets"),
    ],
)
def test_volume_lifetime_refuses_what_cannot_work(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        VolumeLifetime(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


# --------------------------------------------------------------------------- the limits alone


def test_soft_then_hard_limits_fire_once_each() -> None:
    limits = EspLimits(VolumeLifetime(rekey_bytes=100, life_bytes=200), MAX_SEQ_32)
    assert limits.after(SPI, counted(99, 1), 1, outbound=False) is None
    soft = limits.after(SPI, counted(100, 2), 2, outbound=False)
    assert soft is not None and (soft.limit, soft.hard, soft.outbound) == ("rekey_bytes", False, False)
    assert limits.after(SPI, counted(150, 3), 3, outbound=True) is None  # not again
    hard = limits.after(SPI, counted(200, 4), 4, outbound=True)
    assert hard is not None and (hard.limit, hard.hard, hard.outbound) == ("life_bytes", True, True)
    assert limits.expired and limits.after(SPI, counted(300, 5), 5, outbound=True) is None
    assert hard.describe() == "life_bytes (outbound) reached"


def test_packet_limits() -> None:
    limits = EspLimits(VolumeLifetime(rekey_packets=2, life_packets=3), MAX_SEQ_32)
    assert limits.after(SPI, counted(10, 1), 1, outbound=True) is None
    soft = limits.after(SPI, counted(20, 2), 2, outbound=True)
    assert soft is not None and soft.limit == "rekey_packets" and not soft.hard
    hard = limits.after(SPI, counted(30, 3), 3, outbound=False)
    assert hard is not None and hard.limit == "life_packets" and hard.hard


@pytest.mark.parametrize("max_seq", [MAX_SEQ_32, MAX_SEQ_64])
def test_sequence_numbers_rekey_well_before_they_would_cycle(max_seq: int) -> None:
    """RFC 4303 §3.3.3: the counter never cycles; the rekey starts with an eighth of the space left
    (ESN: 2^64), on our counter or the peer's, and our last number is the hard limit."""
    soft_at = soft_sequence(max_seq)
    assert soft_at == max_seq - max_seq // 8 and soft_at < max_seq
    limits = EspLimits(VolumeLifetime(), max_seq)
    assert limits.after(SPI, counted(1, 1), soft_at - 1, outbound=True) is None
    soft = limits.after(SPI, counted(1, 2), soft_at, outbound=False)  # the peer's counter
    assert soft is not None and soft.limit == SEQUENCE_LIMIT and not soft.hard
    assert limits.after(SPI, counted(1, 3), max_seq, outbound=False) is None  # the peer's end: not ours
    hard = limits.after(SPI, counted(1, 4), max_seq, outbound=True)
    assert hard is not None and hard.limit == SEQUENCE_LIMIT and hard.hard
    assert limits.exhausted(SPI) is None  # already fired


# --------------------------------------------------------------------------- through a Child SA


def _sent(pair: Pair, exchange: ExchangeType) -> list[MessageSent]:
    return [e for e in pair.events(MessageSent) if e.exchange is exchange and not e.is_response]


def _responder_child(pair: Pair, sa: IkeSa) -> bytes:
    """Our (the responder's) inbound SPI of the initiator's one Child SA."""
    [child] = sa.children.values()
    return child.outbound_spi


def test_the_soft_packet_limit_starts_a_child_sa_rekey_once() -> None:
    """Soft lifetime (RFC 4301 §4.4.2.1): at rekey_packets the responder sends CREATE_CHILD_SA with
    REKEY_SA (RFC 7296 §2.8), as the time-based rekey does; the new pair has fresh counters."""
    pair, sa = tunnel(volume=VolumeLifetime.derive(rekey_packets=3))
    old = _responder_child(pair, sa)
    for sequence in (1, 2):
        assert ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=sequence))
    assert not pair.events(ChildSaLimitReached) and not _sent(pair, ExchangeType.CREATE_CHILD_SA)
    assert ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=3))
    [reached] = pair.events(ChildSaLimitReached)
    assert (reached.limit, reached.outbound, reached.hard, reached.action) == (
        "rekey_packets",
        False,
        False,
        "rekey",
    )
    assert reached.inbound_spi == old
    [rekey] = _sent(pair, ExchangeType.CREATE_CHILD_SA)  # ours, answered by the initiator
    assert [deleted.inbound_spi for deleted in pair.events(ChildSaDeleted)] == [old]
    [new] = sa.children.values()
    assert new.outbound_spi != old and new.params.rekeyed is not None
    assert ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=4))  # the new pair carries it
    assert len(pair.events(ChildSaLimitReached)) == 1 and len(_sent(pair, ExchangeType.CREATE_CHILD_SA)) == 1
    assert rekey.local_spi == pair.events(ChildSaLimitReached)[0].local_spi


def test_a_limit_the_ike_sa_cannot_act_on_yet_fires_again_with_a_later_packet() -> None:
    """A soft limit reached while the IKE SA cannot start exchanges (here: marked REKEYED, as after
    an IKE SA rekey) is not lost: the next packet once the SA can act starts the rekey."""
    pair, sa = tunnel(volume=VolumeLifetime(rekey_packets=2, life_packets=100))
    [responder_sa] = pair.responder.sas
    assert ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=1))
    responder_sa.state = IkeSaState.REKEYED
    ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=2))  # the limit, nothing can act
    assert not pair.events(ChildSaLimitReached)
    responder_sa.state = IkeSaState.ESTABLISHED
    assert ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=3))
    [reached] = pair.events(ChildSaLimitReached)
    assert (reached.limit, reached.action) == ("rekey_packets", "rekey")
    assert len(_sent(pair, ExchangeType.CREATE_CHILD_SA)) == 1


def test_the_soft_byte_limit_counts_outbound_octets() -> None:
    pair, sa = tunnel(volume=VolumeLifetime(rekey_bytes=60, life_bytes=10_000), backend="api")
    old = _responder_child(pair, sa)
    [responder_sa] = pair.responder.sas
    assert pair.responder.send_inner(responder_sa.local_spi, old, bytes(59), 4, pair.now)
    pair.pump()
    assert not pair.events(ChildSaLimitReached)
    assert pair.responder.send_inner(responder_sa.local_spi, old, bytes(1), 4, pair.now)
    pair.pump()
    [reached] = pair.events(ChildSaLimitReached)
    assert (reached.limit, reached.outbound, reached.action) == ("rekey_bytes", True, "rekey")
    assert old not in responder_sa.children and len(responder_sa.children) == 1


def test_the_hard_packet_limit_deletes_the_pair_and_drops_what_follows() -> None:
    """Hard lifetime (RFC 4301 §4.4.2.1): at life_packets the pair is deleted (INFORMATIONAL
    Delete); packets after it, before the Delete completes, are dropped and counted."""
    pair, sa = tunnel(volume=VolumeLifetime(life_packets=2))
    old = _responder_child(pair, sa)
    [child] = sa.children
    assert ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=1))
    esp = []
    for sequence in (2, 3):  # sent before the responder's Delete can arrive
        assert pair.initiator.send_inner(
            sa.local_spi, child, echo_request(ME, THEM, identifier=1, sequence=sequence), 4, pair.now
        )
        [out] = pair.initiator.messages_to_send()
        esp.append(out.data)
    [delete] = pair.esp_to_responder(esp[0])  # the second packet: the hard limit, and no reply
    assert pair.esp_to_responder(esp[1]) == []  # the third: dropped unopened
    assert pair.responder.last_esp == "dropped: expired"
    assert pair.responder.data_plane.drops["expired"] == 2  # the second's reply, the third
    [reached] = pair.events(ChildSaLimitReached)
    assert (reached.limit, reached.hard, reached.action) == ("life_packets", True, "delete")
    assert _sent(pair, ExchangeType.INFORMATIONAL)
    for answer in pair.to_initiator(delete):
        pair.to_responder(answer)
    [deleted] = pair.events(ChildSaDeleted)
    assert deleted.inbound_spi == old and "life_packets (inbound) reached" in deleted.reason
    assert not sa.children and pair.responder.data_plane.sa(old) is None


def test_sequence_numbers_near_their_end_start_a_rekey() -> None:
    """RFC 4303 §3.3.3 without ESN: our counter, started near 2^32 (a test seam: the counter is
    public), reaches the soft point with the echo reply, and the pair is rekeyed."""
    pair, sa = tunnel()
    old = _responder_child(pair, sa)
    esp_sa = pair.responder.data_plane.sa(old)
    assert esp_sa is not None
    esp_sa.outbound.last_seq = soft_sequence(MAX_SEQ_32) - 1
    assert ping(pair, sa, echo_request(ME, THEM, identifier=1, sequence=1))
    [reached] = pair.events(ChildSaLimitReached)
    assert (reached.limit, reached.outbound, reached.hard, reached.action) == (
        SEQUENCE_LIMIT,
        True,
        False,
        "rekey",
    )
    assert old not in {c.outbound_spi for c in sa.children.values()} and len(sa.children) == 1


def test_sequence_numbers_at_their_end_delete_the_pair_and_never_cycle() -> None:
    """RFC 4303 §3.3.3: the last sequence number is the hard limit (the pair is deleted); a seal past
    it is refused, never wrapped to 0."""
    pair, sa = tunnel()
    old = _responder_child(pair, sa)
    esp_sa = pair.responder.data_plane.sa(old)
    assert esp_sa is not None
    esp_sa.outbound.last_seq = MAX_SEQ_32 - 1
    [responder_sa] = pair.responder.sas
    assert pair.responder.send_inner(responder_sa.local_spi, old, bytes(20), 4, pair.now)  # the last one
    assert esp_sa.outbound.last_seq == MAX_SEQ_32
    assert not pair.responder.send_inner(responder_sa.local_spi, old, bytes(20), 4, pair.now)
    assert esp_sa.outbound.last_seq == MAX_SEQ_32 and pair.responder.data_plane.drops["expired"] == 1
    pair.pump()
    [reached] = pair.events(ChildSaLimitReached)
    assert (reached.limit, reached.hard, reached.action) == (SEQUENCE_LIMIT, True, "delete")
    assert [d.inbound_spi for d in pair.events(ChildSaDeleted)] == [old]


def test_sequence_exhaustion_without_a_limit_having_fired_is_still_refused() -> None:
    """Should the counter already be at its end (the hard limit never seen), sealing raises nothing:
    the packet is dropped and the hard limit fires then."""
    pair, sa = tunnel()
    old = _responder_child(pair, sa)
    esp_sa = pair.responder.data_plane.sa(old)
    assert esp_sa is not None
    esp_sa.outbound.last_seq = MAX_SEQ_32
    [responder_sa] = pair.responder.sas
    assert not pair.responder.send_inner(responder_sa.local_spi, old, bytes(20), 4, pair.now)
    pair.pump()
    [reached] = pair.events(ChildSaLimitReached)
    assert (reached.limit, reached.hard, reached.action) == (SEQUENCE_LIMIT, True, "delete")
