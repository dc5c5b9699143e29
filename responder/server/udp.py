"""UDP listeners: IKE on port 500, IKE and ESP behind the non-ESP marker on 4500 and others.

Strategy: one :class:`UdpListener` per configured ``udp://`` listener, IPv4 or
IPv6, built on ``trio.socket`` (``SOCK_DGRAM``; trio has no high-level UDP
API).  Its :meth:`UdpListener.serve` task attaches a :class:`UdpSink` to the
engine, then reads datagrams until cancelled while a sender task writes what
the sink queued.  Which framing a socket speaks is an explicit ``marker`` flag
(:meth:`UdpListener.open` sets it from the *configured* port: 500 is plain,
every other port uses the marker), so tests on port 0 can exercise both.

With ``marker`` (RFC 3948 §2.2, RFC 7296 §2.23; row B3):

* four zero octets, then an IKE message: handed to the engine;
* a single 0xFF octet is a NAT-keepalive (RFC 3948 §2.3): silently dropped;
* a non-zero first word is ESP-in-UDP (RFC 3948 §2.1): the engine's data plane
  opens it;
* anything else (one to four octets) is garbage: logged (rate-limited), dropped.

Without it (port 500) every datagram is an IKE message for the core, which
drops what does not parse.

The local address of each datagram is the bound address or, when bound to a
wildcard address, the packet's destination from ``IP_PKTINFO`` /
``IPV6_PKTINFO`` (RFC 7296 §2.11: answer from the address the request was
sent to); replies then name that source with the same ancillary data.

The outer header of ESP-in-UDP is the tunnel's: each datagram's ECN field
(``IP_RECVTOS`` / ``IPV6_RECVTCLASS``) goes to the core with the packet
(RFC 6040 §4.2 at egress), and an ESP packet we send carries the traffic
class and DF bit the core chose for it (RFC 4301 §5.1.2.1, §8.1, RFC 6040
§4.1): the traffic class as ``IP_TOS`` / ``IPV6_TCLASS`` ancillary data on
that datagram alone (none when it is 0, the socket's own), DF on an IPv4
socket by ``IP_MTU_DISCOVER``, changed only when it differs from the last
datagram's (IKE messages go with the socket's default).

Batching (issue 12): each wakeup of the socket task reads every datagram
waiting (up to :data:`RECEIVE_BATCH`) with non-blocking calls, and ESP from one
peer in a row reaches the engine as one batch; the sender task sends
everything queued per wakeup the same way.  ``udp_receive_buffer`` sizes the
kernel's receive buffer, so that a burst waits there instead of being dropped.

Nothing a peer sends ends the socket task: oversize (truncated) datagrams,
garbage and errors from the socket (ICMP unreachable surfacing as
ECONNREFUSED on Linux) are logged and the loop goes on.  The sink's queue is
bounded; a full queue drops the message (IKE's retransmissions recover).
"""

from __future__ import annotations

import errno
import logging
import os
import socket as stdlib_socket
import sys
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address

import attrs
import trio

from responder.core.path import Path, Transport
from responder.core.tcp_framing import NAT_KEEPALIVE, NON_ESP_MARKER
from responder.server.contracts import EngineInput
from responder.server.logs import RateLimiter, address_port, where

__all__ = ["IKE_PLAIN_PORT", "UdpListener", "UdpSink", "UdpStats"]

logger = logging.getLogger("responder.server.udp")

IPAddress = IPv4Address | IPv6Address

IKE_PLAIN_PORT = 500  # RFC 7296 §2: IKE without the non-ESP marker
MAX_DATAGRAM = 65535
# Linux values; Python 3.11 does not name IP_PKTINFO (library-facts.md).
IP_PKTINFO = getattr(stdlib_socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(stdlib_socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(stdlib_socket, "IPV6_PKTINFO", 50)
IP_MTU_DISCOVER = getattr(stdlib_socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 0, 2  # linux/in.h: DF clear, DF set
_ANCILLARY_SIZE = stdlib_socket.CMSG_SPACE(64) + stdlib_socket.CMSG_SPACE(4)
SO_RCVBUFFORCE = getattr(stdlib_socket, "SO_RCVBUFFORCE", 33)  # Linux; not named on every platform
_FATAL_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})
RECEIVE_BATCH = 64  #: most datagrams read per wakeup before other tasks get a turn
SEND_BATCH = 64  #: most queued datagrams sent per wakeup of the sender
PATH_CACHE = 4096  #: remembered (local, sender) -> Path entries (cleared when full)


@attrs.define
class UdpStats:
    """What one UDP socket saw and did."""

    datagrams: int = 0
    ike: int = 0
    esp: int = 0
    keepalives: int = 0
    garbage: int = 0
    truncated: int = 0
    receive_errors: int = 0
    sent: int = 0
    send_errors: int = 0
    queue_full: int = 0


@attrs.define(eq=False)
class UdpSink:
    """Queues IKE messages for the sender task of one UDP socket (never blocks)."""

    channel: trio.MemorySendChannel[tuple[bytes, Path, int, bool | None]]
    stats: UdpStats
    limiter: RateLimiter
    marker: bool  #: the socket's IKE messages carry the non-ESP marker (RFC 3948 §2.2)
    #: Sends a datagram at once if nothing waits before it and the socket takes it without
    #: blocking (``False``: queue it); see :meth:`UdpListener.serve`.
    send_now: Callable[[bytes, Path, int, bool | None], bool] | None = None

    def send_ike(self, message: bytes, path: Path) -> bool:
        return self._queue(NON_ESP_MARKER + message if self.marker else message, path)

    def send_esp(self, packet: bytes, path: Path, tos: int = 0, df: bool | None = None) -> bool:
        """ESP-in-UDP as it is (RFC 3948 §2.1), only on a socket with the non-ESP marker; ``tos``
        and ``df`` mark this datagram's outer header."""
        if not self.marker:
            self.limiter.log(
                logger, logging.WARNING, "esp-500", trio.current_time(), "%s no ESP on port 500", where(path)
            )
            return False
        return self._queue(packet, path, tos, df)

    def _queue(self, data: bytes, path: Path, tos: int = 0, df: bool | None = None) -> bool:
        if self.send_now is not None and self.send_now(data, path, tos, df):
            return True
        try:
            self.channel.send_nowait((data, path, tos, df))
        except trio.WouldBlock:
            self.stats.queue_full += 1
            self.limiter.log(
                logger,
                logging.WARNING,
                "queue",
                trio.current_time(),
                "%s send queue full: dropped",
                where(path),
            )
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def close(self, reason: str) -> None:
        """Nothing to close: one UDP socket serves every peer (RFC 9329 §6.1 closes connections only)."""
        logger.debug("udp socket: close (%s) ignored", reason)


@attrs.define(eq=False)
class UdpListener:
    """One bound UDP socket and how it frames IKE; :meth:`serve` runs it (and closes it at the end)."""

    socket: trio.socket.SocketType
    marker: bool
    queue_size: int = 256
    log_interval: float = 10.0
    log_lines_max: int = 200  #: rate-limited lines per ``log_interval`` in all (peers vary their address)
    stats: UdpStats = attrs.Factory(UdpStats)
    _limiter: RateLimiter = attrs.field(init=False)
    _df: int | None = attrs.field(init=False, default=None)  # IP_MTU_DISCOVER we set last (None: default)
    _df_default: int = attrs.field(init=False, default=1)  # IP_PMTUDISC_WANT unless the socket says
    _sending: bool = attrs.field(init=False, default=False)  # the sender task has datagrams to send

    def __attrs_post_init__(self) -> None:
        self._limiter = RateLimiter(self.log_interval, total=self.log_lines_max)
        if self.socket.family == stdlib_socket.AF_INET:
            self._df_default = self.socket.getsockopt(stdlib_socket.IPPROTO_IP, IP_MTU_DISCOVER)
            self._df = self._df_default

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        marker: bool | None = None,
        log_lines_max: int = 200,
        receive_buffer: int = 0,
    ) -> UdpListener:
        """Bind ``host:port`` (port 0: any free port); ``marker`` defaults to ``port != 500``.

        ``receive_buffer`` (octets, 0: the system's default) sizes the socket's receive
        buffer, so that a burst of ESP waits in the kernel instead of being dropped there;
        as root past ``net.core.rmem_max`` (``SO_RCVBUFFORCE``), else up to it.
        """
        address = ip_address(host)
        family = stdlib_socket.AF_INET6 if address.version == 6 else stdlib_socket.AF_INET
        sock = trio.socket.socket(family, stdlib_socket.SOCK_DGRAM)
        try:
            if address.version == 6:
                sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 1)
                sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_RECVTCLASS, 1)
                if address.is_unspecified:
                    sock.setsockopt(stdlib_socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            else:
                sock.setsockopt(stdlib_socket.IPPROTO_IP, stdlib_socket.IP_RECVTOS, 1)
                if address.is_unspecified:
                    sock.setsockopt(stdlib_socket.IPPROTO_IP, IP_PKTINFO, 1)
            if receive_buffer:
                _set_receive_buffer(sock, receive_buffer)
            await sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock, port != IKE_PLAIN_PORT if marker is None else marker, log_lines_max=log_lines_max)

    @property
    def local(self) -> tuple[IPAddress, int]:
        """The bound address and port."""
        name = self.socket.getsockname()
        return ip_address(name[0]), int(name[1])

    async def serve(
        self, engine: EngineInput, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Attach to ``engine``, receive until cancelled, then detach and close the socket."""
        address, port = self.local
        attach_path = Path(Transport.UDP, address, port, address, 0)
        send, receive = trio.open_memory_channel[tuple[bytes, Path, int, bool | None]](self.queue_size)
        # Sending uses plain non-blocking calls on a duplicate of the socket's descriptor.  A
        # datagram goes out in the engine's call when nothing is queued before it and the socket
        # takes it at once: no wakeup of the sender task, so one scheduler pass less per datagram
        # (issue 14); the sender task sends only what had to wait.
        raw = stdlib_socket.socket(fileno=os.dup(self.socket.fileno()))
        raw.setblocking(False)
        pinned = address.is_unspecified
        engine.attach(
            attach_path,
            UdpSink(send, self.stats, self._limiter, self.marker, partial(self._send_now, send, raw, pinned)),
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._send_loop, receive, raw, pinned)
                logger.debug(
                    "listening on udp %s (%s)",
                    address_port(address, port),
                    "non-ESP marker" if self.marker else "plain IKE",
                )
                task_status.started()
                await self._receive_loop(engine, address, port)
        finally:
            engine.detach(attach_path)
            send.close()
            raw.close()
            self.socket.close()

    # ------------------------------------------------------------------ receiving

    async def _receive_loop(self, engine: EngineInput, bound: IPAddress, port: int) -> None:
        ancillary = _ANCILLARY_SIZE  # the outer ECN field, and the destination if bound to a wildcard
        # Batching (issue 12): each wakeup reads every datagram waiting, up to RECEIVE_BATCH,
        # with plain non-blocking calls on a duplicate of the socket's descriptor (trio's
        # recvmsg costs a scheduler pass per datagram); ESP datagrams in a row from one peer
        # reach the engine as one batch.
        raw = stdlib_socket.socket(fileno=os.dup(self.socket.fileno()))
        raw.setblocking(False)
        paths: dict[tuple[IPAddress, object], Path] = {}
        try:
            while True:
                await trio.lowlevel.wait_readable(raw)
                esp: list[bytes] = []
                esp_path: Path | None = None
                esp_ecn = 0
                for _ in range(RECEIVE_BATCH):
                    try:
                        data, ancdata, flags, sender = raw.recvmsg(MAX_DATAGRAM, ancillary)
                    except BlockingIOError:
                        break
                    except OSError as error:
                        if error.errno in _FATAL_ERRNOS:
                            raise
                        self.stats.receive_errors += 1
                        self._log(
                            logging.INFO,
                            "recv-error",
                            "udp socket %s:%d: receive error %s",
                            bound,
                            port,
                            error,
                        )
                        continue
                    self.stats.datagrams += 1
                    local = _destination(ancdata) if ancdata else None
                    path = paths.get((local or bound, sender))
                    if path is None:
                        try:
                            if not isinstance(sender, tuple):
                                raise TypeError(f"sender address {sender!r}")
                            path = Path(
                                Transport.UDP, local or bound, port, ip_address(sender[0]), int(sender[1])
                            )
                        except (ValueError, IndexError, TypeError) as error:
                            self.stats.garbage += 1
                            self._log(
                                logging.INFO, "sender", "datagram from an unusable address dropped: %s", error
                            )
                            continue
                        if len(paths) >= PATH_CACHE:
                            paths.clear()
                        paths[(local or bound, sender)] = path
                    if flags & stdlib_socket.MSG_TRUNC:
                        self.stats.truncated += 1
                        self._log(
                            logging.INFO,
                            ("trunc", path.remote_address),
                            "%s datagram truncated: dropped",
                            where(path),
                        )
                        continue
                    if self.marker and len(data) > 4 and data[:4] != NON_ESP_MARKER:
                        self.stats.esp += 1  # RFC 3948 §2.1: ESP in UDP; the SPI is never zero
                        ecn = _ecn(ancdata)  # RFC 6040 §4.2: the outer field goes with the packet
                        if path is not esp_path or ecn != esp_ecn:
                            self._deliver_esp(engine, esp, esp_path, esp_ecn)
                            esp, esp_path, esp_ecn = [], path, ecn
                        esp.append(data)
                        continue
                    self._deliver_esp(engine, esp, esp_path, esp_ecn)
                    esp, esp_path = [], None
                    try:
                        self._dispatch(engine, data, path, ancdata)
                    except Exception:  # never let one datagram end the socket
                        logger.exception(
                            "%s datagram of %d octets could not be handled", where(path), len(data)
                        )
                self._deliver_esp(engine, esp, esp_path, esp_ecn)
        finally:
            raw.close()

    def _deliver_esp(self, engine: EngineInput, packets: list[bytes], path: Path | None, ecn: int) -> None:
        if not packets or path is None:
            return
        try:
            engine.receive_esp_batch(packets, path, ecn)
        except Exception:  # never let one batch end the socket
            logger.exception("%s %d ESP datagrams could not be handled", where(path), len(packets))

    def _dispatch(
        self, engine: EngineInput, data: bytes, path: Path, ancdata: list[tuple[int, int, bytes]]
    ) -> None:
        if data == NAT_KEEPALIVE:
            self.stats.keepalives += 1  # RFC 3948 §2.3: dropped, never an error
            return
        if not self.marker:
            self.stats.ike += 1
            engine.receive_ike(data, path)
            return
        if data[:4] == NON_ESP_MARKER and len(data) > len(NON_ESP_MARKER):
            self.stats.ike += 1
            engine.receive_ike(data[4:], path)  # RFC 3948 §2.2
            return
        if len(data) >= 4 and data[:4] != NON_ESP_MARKER:
            self.stats.esp += 1
            engine.receive_esp(data, path, _ecn(ancdata))  # RFC 3948 §2.1: the SPI is never zero
            return
        self.stats.garbage += 1
        self._log(
            logging.INFO,
            ("garbage", path.remote_address),
            "%s %d-octet datagram is neither IKE, ESP nor a NAT-keepalive: dropped",
            where(path),
            len(data),
        )

    # ------------------------------------------------------------------ sending

    async def _send_loop(
        self,
        receive: trio.MemoryReceiveChannel[tuple[bytes, Path, int, bool | None]],
        raw: stdlib_socket.socket,
        pinned: bool,
    ) -> None:
        """Send what the sink queued; each wakeup sends everything queued with non-blocking calls,
        waiting only when the socket's buffer is full (batching, issue 12)."""
        async with receive:
            async for item in receive:  # framed by the sink already
                self._sending = True  # datagrams are out of the channel but not yet sent
                try:
                    batch = [item]
                    while len(batch) < SEND_BATCH:
                        try:
                            batch.append(receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    for data, path, tos, df in batch:
                        while not self._send(raw, data, path, pinned, tos, df):
                            await trio.lowlevel.wait_writable(raw)
                finally:
                    # Caught up only when nothing more waits in the channel.
                    self._sending = receive.statistics().current_buffer_used > 0

    def _send_now(
        self,
        queue: trio.MemorySendChannel[tuple[bytes, Path, int, bool | None]],
        raw: stdlib_socket.socket,
        pinned: bool,
        data: bytes,
        path: Path,
        tos: int,
        df: bool | None,
    ) -> bool:
        """Send one datagram in the caller's turn if nothing waits to be sent before it; ``False``
        when it must be queued instead (order is kept: the queue goes first)."""
        if not self._sending and not queue.statistics().current_buffer_used:
            try:
                if self._send(raw, data, path, pinned, tos, df):
                    return True
            except OSError:  # the socket is gone (shutting down): the sender task meets it too
                pass
        # Queued: until the sender task has caught up, whatever follows is queued behind it
        # (a waiting sender takes a datagram straight from the channel, leaving it empty).
        self._sending = True
        return False

    def _send(
        self, raw: stdlib_socket.socket, data: bytes, path: Path, pinned: bool, tos: int, df: bool | None
    ) -> bool:
        """One non-blocking send: ``True`` when the datagram is done with (sent, or failed and
        counted), ``False`` when the socket's buffer is full."""
        destination = (str(path.remote_address), path.remote_port)
        control = []
        if pinned and not path.local_address.is_unspecified:
            control.append(_source(path.local_address))
        if tos:  # RFC 4301 §5.1.2.1: this datagram's outer DSCP and ECN
            control.append(_traffic_class(path.local_address.version, tos))
        try:
            self._set_df(df)
            if control:
                raw.sendmsg([data], control, 0, destination)
            else:
                raw.sendto(data, destination)
        except BlockingIOError:
            return False
        except OSError as error:
            if error.errno in _FATAL_ERRNOS:
                raise
            self.stats.send_errors += 1
            self._log(
                logging.INFO, ("send-error", path.remote_address), "%s send failed: %s", where(path), error
            )
            return True
        self.stats.sent += 1
        return True

    def _set_df(self, df: bool | None) -> None:
        """The outer IPv4 DF bit of the next datagram (RFC 4301 §8.1): a socket option, set only
        when it changes; ``None`` is the socket's default (IPv6 has no DF bit to set)."""
        if self._df is None:  # an IPv6 socket
            return
        wanted = self._df_default if df is None else IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT
        if wanted != self._df:
            self.socket.setsockopt(stdlib_socket.IPPROTO_IP, IP_MTU_DISCOVER, wanted)
            self._df = wanted

    def _log(self, level: int, key: object, message: str, *args: object) -> None:
        self._limiter.log(logger, level, (key,), trio.current_time(), message, *args)


def _set_receive_buffer(sock: trio.socket.SocketType, size: int) -> None:
    try:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:  # not root (EPERM): the kernel caps SO_RCVBUF at net.core.rmem_max
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, size)


def _destination(ancdata: list[tuple[int, int, bytes]]) -> IPAddress | None:
    """The datagram's destination address from IP_PKTINFO / IPV6_PKTINFO, if present."""
    for level, kind, data in ancdata:
        if level == stdlib_socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            return IPv4Address(data[8:12])  # struct in_pktinfo: ifindex, spec_dst, addr
        if level == stdlib_socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(data) >= 16:
            return IPv6Address(data[:16])  # struct in6_pktinfo: addr, ifindex
    return None


def _ecn(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The ECN field of the datagram's outer header (RFC 3168 §5), from IP_TOS / IPV6_TCLASS; 0
    (Not-ECT) when absent."""
    for level, kind, data in ancdata:
        if level == stdlib_socket.IPPROTO_IP and kind == stdlib_socket.IP_TOS and data:
            return data[0] & 0b11  # one octet
        if level == stdlib_socket.IPPROTO_IPV6 and kind == stdlib_socket.IPV6_TCLASS and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder) & 0b11  # an int
    return 0


def _traffic_class(version: int, tos: int) -> tuple[int, int, bytes]:
    """Ancillary data that sends one datagram with this outer traffic class octet."""
    if version == 4:
        return stdlib_socket.IPPROTO_IP, stdlib_socket.IP_TOS, tos.to_bytes(4, sys.byteorder)
    return stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_TCLASS, tos.to_bytes(4, sys.byteorder)


def _source(address: IPAddress) -> tuple[int, int, bytes]:
    """Ancillary data that makes a wildcard-bound socket send from ``address``."""
    if address.version == 4:
        # struct in_pktinfo: ifindex 0, ipi_spec_dst = our source, ipi_addr ignored
        return stdlib_socket.IPPROTO_IP, IP_PKTINFO, bytes(4) + address.packed + bytes(4)
    return stdlib_socket.IPPROTO_IPV6, IPV6_PKTINFO, address.packed + bytes(4)
