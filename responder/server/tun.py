"""The TUN backend's device: decrypted packets into the host's stack, the host's answers back into ESP.

Strategy: one Linux TUN device per responder (``[tun]``, default ``ikev2r0``),
made only when some child has ``backend = "tun"`` and shared by all of them.
:meth:`TunDevice.run` opens ``/dev/net/tun`` and asks for an ``IFF_TUN |
IFF_NO_PI`` device with the ``TUNSETIFF`` ioctl (bare IPv4/IPv6 packets, no
packet-information header), then sets its MTU, brings it up and gives it its
addresses with the ``ip`` command (iproute2, run through
:func:`trio.run_process`: a few commands at start and when Child SAs come
and go, never per packet).  Anything that fails there (not root, no
``/dev/net/tun``, a name taken by another device, no ``ip``) is a
:class:`~responder.core.errors.LocalError` naming the children that need the
device and the reason, raised before the server reports itself started, so
the command line exits 1 with one line instead of failing later.

Then three things run until the server stops:

* **into the host**: the engine hands every decrypted packet of a TUN-backend
  Child SA (already checked against its selectors by the core, RFC 4301
  §5.2) to :meth:`TunDevice.deliver`, which writes it to the non-blocking
  device at once (a TUN write hands the packet to the stack and does not
  wait); a failed write is dropped and counted;
* **out of the host**: a task waits with :func:`trio.lowlevel.wait_readable`
  and reads up to :data:`READ_BATCH` packets per wakeup, then hands the batch
  to :meth:`Engine.send_routed`, which finds each one's Child SA by its
  selectors (RFC 4301 §5.1, :mod:`responder.core.outbound`) and seals it as
  ESP; a packet no Child SA holds is dropped and counted (``no_sa``).  A read
  error other than EAGAIN (the device deleted under us: EBADFD, EIO) stops
  the reading for good, logged once, rather than spin on a descriptor that
  polls readable for ever;
* **routes**: the host must send the replies to the peers' inner addresses
  into the device, so every remote selector of every installed TUN-backend
  Child SA becomes routes (``ip route add NET dev NAME``; a selector's
  address range as the fewest prefixes that cover it exactly).  A
  :class:`RouteWatch` observer wakes the route keeper whenever a Child SA is
  established or deleted, an IKE SA is established or closes, an SA's path
  changes, or a new peer's IKE_SA_INIT comes from inside a routed prefix; it
  compares the routes the core's selectors want with those it added and adds
  or removes the difference.  Routes are only ever added, never replaced: one
  the host already has (a default route for a peer whose selectors say
  0.0.0.0/0, a connected network) is left alone and logged once.  A prefix
  that holds a live IKE peer's outer address is not routed, and taken back if
  it was (it would pull the IKE and ESP traffic itself into the tunnel; the
  inner traffic of the Child SAs that wanted it then goes by the host's other
  routes), until that peer is gone.  A remote selector whose range is empty
  (start above end) becomes no route (logged once).  A failure of the keeper
  is logged and counted (``route_errors``) and it carries on; an ``ip``
  command gets :data:`IP_TIMEOUT` seconds.

On shutdown the routes it added are removed and the file descriptor closed,
which removes the device (it is not persistent).  The counters show in the
engine's stats (``tun``): packets and octets to and from the device, what
was sealed, and the drops by reason, the core's own (``in_dropped_not_selected``)
included.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import logging
import os
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, TypeAlias

import attrs
import trio

from responder.core.config import Config
from responder.core.data_plane import Backend, InnerPacket
from responder.core.enums import ExchangeType
from responder.core.errors import LocalError
from responder.core.events import (
    ChildSaDeleted,
    ChildSaEstablished,
    Event,
    IkeSaClosed,
    IkeSaEstablished,
    MessageAccepted,
    PathChanged,
)
from responder.core.path import Path
from responder.core.payloads import TrafficSelector
from responder.server.engine import Engine
from responder.server.settings import TunSettings

__all__ = ["DEVICE", "IP_TIMEOUT", "READ_BATCH", "RouteWatch", "TunDevice", "routes_for", "tun_children"]

logger = logging.getLogger("responder.server.tun")

DEVICE: Final = "/dev/net/tun"
TUNSETIFF: Final = 0x400454CA  #: _IOW('T', 202, int) (linux/if_tun.h)
IFF_TUN: Final = 0x0001
IFF_NO_PI: Final = 0x1000
READ_BATCH: Final = 64  #: packets read per wakeup at most, then handed to the engine together
READ_SIZE: Final = 65535  #: octets asked for per read (one packet per read on a TUN device)
CLEANUP_TIMEOUT: Final = 5.0  #: seconds the routes' removal may take at shutdown
IP_TIMEOUT: Final = 10.0  #: seconds one ``ip`` command may take before it is killed and counts as failed

#: Why the device could not be made, by errno, in words a user can act on.
_OPEN_ERRORS: Final = {
    errno.ENOENT: f"no {DEVICE} (load the tun module: modprobe tun)",
    errno.ENODEV: f"no {DEVICE} (load the tun module: modprobe tun)",
    errno.EACCES: "needs root (or CAP_NET_ADMIN and access to /dev/net/tun)",
    errno.EPERM: "needs root (or CAP_NET_ADMIN)",
    errno.EBUSY: "another program holds a device of that name",
    errno.EINVAL: "a device of that name exists and is not a TUN device",
}


def tun_children(config: Config) -> list[str]:
    """The children with ``backend = "tun"``, as their key paths in the configuration file."""
    found = [
        f"peers.{peer.name}.children.{child.name}"
        for peer in config.peers
        for child in peer.children
        if child.backend == Backend.TUN.value
    ]
    if config.any_id_psk is not None or config.lab_pubkey:
        found += [f"lab.children.{c.name}" for c in config.lab_children if c.backend == Backend.TUN.value]
    return found


Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def routes_for(
    selectors: Iterable[TrafficSelector], skipped: set[TrafficSelector] | None = None
) -> set[Network]:
    """The prefixes (``10.250.1.1/32``) that cover the address ranges of ``selectors`` exactly.

    A selector whose range is reversed (start above end: it holds no address, RFC 7296
    §3.13.1) or mixes IPv4 and IPv6 becomes no route; it is added to ``skipped``.
    """
    routes: set[Network] = set()
    for selector in selectors:
        first, last = selector.start_address, selector.end_address
        if first.version != last.version or int(first) > int(last):
            if skipped is not None:
                skipped.add(selector)
            continue
        # two branches, so that each call has one address type (mypy)
        if isinstance(first, ipaddress.IPv4Address) and isinstance(last, ipaddress.IPv4Address):  # noqa: SIM114
            routes.update(ipaddress.summarize_address_range(first, last))
        elif isinstance(first, ipaddress.IPv6Address) and isinstance(last, ipaddress.IPv6Address):
            routes.update(ipaddress.summarize_address_range(first, last))
    return routes


#: Events after which a peer's outer address may lie in a routed prefix, or a route may be wanted or not.
_WAKING: Final = (ChildSaEstablished, ChildSaDeleted, IkeSaClosed, IkeSaEstablished, PathChanged)


@attrs.define(eq=False)
class RouteWatch:
    """An engine observer: wakes the route keeper when a Child SA comes or goes, and when a peer's
    outer address may have come to lie in a routed prefix: an IKE SA established, an SA's path
    changed (RFC 9329 §6.1), or a new IKE SA's IKE_SA_INIT accepted from an address inside one of
    the routed prefixes (:meth:`routes_to`, a test per prefix length, so a flood of IKE_SA_INIT
    from elsewhere never wakes the keeper)."""

    changed: trio.Event = attrs.Factory(trio.Event)
    #: The routed prefixes, as {IP version: {prefix length: network numbers}} (set by the keeper).
    _routed: dict[int, dict[int, set[int]]] = attrs.field(init=False, factory=dict)

    def observe(self, event: Event, path: Path | None) -> None:
        if isinstance(event, _WAKING) or (
            isinstance(event, MessageAccepted)
            and event.exchange == ExchangeType.IKE_SA_INIT
            and path is not None
            and self.routes_to(path.remote_address)
        ):
            self.changed.set()

    def route(self, networks: Iterable[Network]) -> None:
        """Remember ``networks`` as the prefixes routed into the device (replacing the last ones)."""
        routed: dict[int, dict[int, set[int]]] = {}
        for network in networks:
            by_length = routed.setdefault(network.version, {})
            by_length.setdefault(network.prefixlen, set()).add(int(network.network_address))
        self._routed = routed

    def routes_to(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether ``address`` lies in a prefix routed into the device."""
        bits, value = address.max_prefixlen, int(address)
        for length, networks in self._routed.get(address.version, {}).items():
            if value >> (bits - length) << (bits - length) in networks:
                return True
        return False


@attrs.define(eq=False)
class TunDevice:
    """The TUN device shared by the children ``children`` (key paths, for messages); see the module."""

    settings: TunSettings
    engine: Engine
    watch: RouteWatch
    children: tuple[str, ...] = ()
    _fd: int = attrs.field(init=False, default=-1)
    _counts: Counter[str] = attrs.field(init=False, factory=Counter)
    _routes: set[str] = attrs.field(init=False, factory=set)  #: routes we added
    _refused: set[str] = attrs.field(init=False, factory=set)  #: routes the host refused (logged once)
    #: Routes not made, or taken back, because they hold these peers' outer addresses (logged once
    #: each); tried again once those peers are gone.
    _held: dict[str, frozenset[str]] = attrs.field(init=False, factory=dict)
    _skipped: set[TrafficSelector] = attrs.field(init=False, factory=set)  #: reversed selectors, logged
    _reading: bool = attrs.field(init=False, default=True)  #: False once a read failed for good

    @property
    def name(self) -> str:
        return self.settings.name

    # ------------------------------------------------------------------ start and stop

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Make the device, carry packets and keep the routes until cancelled; then clean up."""
        self._fd = self._open()
        try:
            await self._ip("link", "set", "dev", self.name, "mtu", str(self.settings.mtu), "up")
            for address in self.settings.addresses:
                await self._ip("addr", "add", str(address), "dev", self.name)
            self.engine.attach_backend(Backend.TUN, self)
            logger.info(
                "TUN device %s up (MTU %d%s) for %s",
                self.name,
                self.settings.mtu,
                "".join(f", {address}" for address in self.settings.addresses),
                ", ".join(self.children) or "no child yet",
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop, name="tun-read")
                nursery.start_soon(self._keep_routes, name="tun-routes")
                task_status.started()
        finally:
            self.engine.detach_backend(Backend.TUN)
            with trio.CancelScope(shield=True), trio.move_on_after(CLEANUP_TIMEOUT):
                for route in sorted(self._routes):
                    await self._ip("route", "del", route, "dev", self.name, check=False)
            self._routes.clear()
            trio.lowlevel.notify_closing(self._fd)
            os.close(self._fd)  # a device that is not persistent goes with its last descriptor
            self._fd = -1
            logger.info("TUN device %s removed", self.name)

    def _fail(self, reason: str) -> LocalError:
        users = ", ".join(self.children) or "a child"
        return LocalError(f'the TUN device {self.name!r} for {users} (backend = "tun"): {reason}')

    def _open(self) -> int:
        """``/dev/net/tun`` opened and bound to our device (TUNSETIFF), non-blocking."""
        try:
            fd = os.open(DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise self._fail(_OPEN_ERRORS.get(error.errno or 0, error.strerror or str(error))) from None
        try:
            request = struct.pack("16sH22x", self.name.encode(), IFF_TUN | IFF_NO_PI)
            fcntl.ioctl(fd, TUNSETIFF, request)
        except OSError as error:
            os.close(fd)
            what = _OPEN_ERRORS.get(error.errno or 0, error.strerror or str(error))
            raise self._fail(f"TUNSETIFF: {what}") from None
        return fd

    async def _ip(self, *arguments: str, check: bool = True) -> str | None:
        """Run ``ip ARGUMENTS``; its error text (``None``: it worked).  With ``check`` a failure
        is a :class:`LocalError` (at start).  One that takes longer than :data:`IP_TIMEOUT`
        seconds is killed and fails."""
        done = None
        try:
            with trio.move_on_after(IP_TIMEOUT):
                done = await trio.run_process(
                    ["ip", *arguments], capture_stdout=True, capture_stderr=True, check=False
                )
        except OSError as error:
            if check:
                raise self._fail(f"cannot run 'ip' (iproute2): {error.strerror or error}") from None
            return str(error)
        if done is None:
            text = f"'ip {' '.join(arguments)}' took more than {IP_TIMEOUT:g} s and was killed"
            logger.error("TUN device %s: %s", self.name, text)
            if check:
                raise self._fail(text)
            return text
        if done.returncode == 0:
            return None
        text = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        if check:
            raise self._fail(f"'ip {' '.join(arguments)}' failed: {text}")
        return text

    # ------------------------------------------------------------------ into the host

    def deliver(self, inner: InnerPacket) -> None:
        """Write one decrypted packet into the device (the engine calls this; never blocks)."""
        try:
            os.write(self._fd, inner.payload)
        except OSError as error:  # EAGAIN, EIO when the device is down, ...
            self._counts["to_device_errors"] += 1
            logger.debug("TUN device %s: write failed: %s", self.name, error)
            return
        self._counts["to_device_packets"] += 1
        self._counts["to_device_octets"] += len(inner.payload)

    # ------------------------------------------------------------------ out of the host

    def _read(self) -> bytes:
        return os.read(self._fd, READ_SIZE)

    def _read_batch(self) -> Iterator[bytes]:
        """Up to :data:`READ_BATCH` packets.  A read error other than "nothing yet" (EAGAIN,
        EINTR), or an empty read, means the device is gone or broken (EBADFD, EIO after ``ip
        link del``): its descriptor would poll readable for ever, so reading stops for good
        (logged once) rather than spin."""
        for _ in range(READ_BATCH):
            try:
                packet = self._read()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._counts["from_device_errors"] += 1
                self._stop_reading(str(error))
                return
            if not packet:
                self._stop_reading("it returned nothing (end of file)")
                return
            self._counts["from_device_packets"] += 1
            self._counts["from_device_octets"] += len(packet)
            yield packet

    def _stop_reading(self, reason: str) -> None:
        self._reading = False
        logger.error(
            "TUN device %s: read failed: %s; no more packets are read from it (the host's answers "
            "are lost until the responder restarts)",
            self.name,
            reason,
        )

    async def _read_loop(self) -> None:
        while self._reading:
            await trio.lowlevel.wait_readable(self._fd)
            batch = list(self._read_batch())
            if not batch:
                continue
            for reason in self.engine.send_routed(batch):
                self._counts["out_sealed" if reason is None else f"out_dropped_{reason}"] += 1

    # ------------------------------------------------------------------ routes

    async def _keep_routes(self) -> None:
        while True:
            changed = self.watch.changed = trio.Event()
            try:
                await self.sync_routes()
            except Exception:  # a bug here must never end the device, let alone the server
                self._counts["route_errors"] += 1
                logger.exception("TUN device %s: keeping the routes failed", self.name)
            await changed.wait()

    async def sync_routes(self) -> None:
        """Add the routes the installed Child SAs' remote selectors want, remove those they no longer want.

        A prefix holding the outer address of a live IKE SA's peer (half-open ones
        included) is never routed into the device: it would take the IKE and ESP
        traffic itself into the tunnel.  That is checked for every route each time,
        so a route we hold is taken back when a peer's address comes to lie in it
        (a new peer, a changed path), and made again once no peer is in it.
        """
        skipped: set[TrafficSelector] = set()
        wanted = {
            str(network): network
            for network in routes_for(self.engine.data_plane.outbound.remote_selectors(), skipped)
        }
        for selector in skipped - self._skipped:
            logger.warning(
                "TUN device %s: no route for the remote selector %s-%s: its range is empty",
                self.name,
                selector.start_address,
                selector.end_address,
            )
        self._skipped = skipped
        peers = {sa.path.remote_address for sa in self.engine.sas()}
        held: dict[str, frozenset[str]] = {}
        for route, network in wanted.items():
            inside = frozenset(str(peer) for peer in peers if peer in network)
            if inside:
                held[route] = inside
        for route in sorted(self._routes - (wanted.keys() - held.keys())):
            failed = await self._ip("route", "del", route, "dev", self.name, check=False)
            if failed:
                logger.warning("TUN device %s: route %s not removed: %s", self.name, route, failed)
            else:
                logger.info("TUN device %s: route %s removed", self.name, route)
            self._routes.discard(route)
        for route in sorted(held.keys() - self._held.keys()):
            logger.warning(
                "TUN device %s: no route %s into it: it holds %s, the outer address of an IKE peer",
                self.name,
                route,
                ", ".join(sorted(held[route])),
            )
        self._held = held
        self._refused &= wanted.keys()
        for route in sorted(wanted.keys() - held.keys() - self._routes - self._refused):
            failed = await self._ip("route", "add", route, "dev", self.name, check=False)
            if failed:
                self._refused.add(route)
                logger.warning("TUN device %s: no route %s into it: %s", self.name, route, failed)
                continue
            self._routes.add(route)
            logger.info("TUN device %s: route %s added", self.name, route)
        self.watch.route(wanted[route] for route in self._routes)

    @property
    def routes(self) -> frozenset[str]:
        """The routes into the device this responder added and still holds."""
        return frozenset(self._routes)

    def counters(self) -> Mapping[str, int]:
        """Packets and octets each way, what was sealed, drops by reason (the core's included)."""
        counts = dict(self._counts)
        for reason, count in self.engine.data_plane.inner_drops.items():
            counts[f"in_dropped_{reason}"] = count
        return counts
