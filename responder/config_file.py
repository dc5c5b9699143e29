"""The TOML configuration file (``--config FILE``): sections that swanctl.conf users recognise.

Strategy: the file is read with :mod:`tomllib` and walked table by table.  At
each table the loader first rejects keys it does not know (with a did-you-mean
hint), then checks each value's TOML type, then hands text to the model's own
parsers (:meth:`IkeProposal.parse`, :meth:`IdPattern.parse`, ...) and values to
the model's constructors, whose validators decide what is acceptable; this
module adds no rule of its own about proposals, identities, selectors, pools or
limits.  Whatever goes wrong is a :class:`ConfigError` whose path is the key
path in the file (``peers.alice.psk: empty secret``): errors the model reports
with its own field names (``peers[0].children[1].pool``) are translated back
through the names the file gave those tables.

What the core needs becomes a :class:`~responder.core.config.Config`; what only
the Trio shell needs (listeners, TLS files, the key-log directory, stream
connection limits, log level) sits beside it in
:class:`~responder.server.settings.ServerSettings`, which :func:`load_config`
returns.  docs/configuration.md documents every key;
:data:`KEYS` is the list it is checked against.

Layout (``NAME`` is any table name the user picks)::

    [responder]  [responder.limits]  [certificates]  [tls]  [keylog]  [web]  [tun]
    [pools.NAME]  [peers.NAME]  [peers.NAME.children.NAME]  [lab]  [lab.children.NAME]
    [impair]  (lab impairments: Config.impair, every key off unless set)
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from responder.core.config import (
    CHILD_LIFETIME,
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    IKE_LIFETIME,
    IMPAIRMENT_NAMES,
    AddressPool,
    ChildConfig,
    ChildlessPolicy,
    Config,
    ConfigError,
    DfPolicy,
    Dpd,
    EspProposal,
    Identity,
    IdPattern,
    IkeProposal,
    Impairments,
    Lifetime,
    Limits,
    Mode,
    OuterPolicy,
    PeerConfig,
    PskAuth,
    PubkeyAuth,
    Secret,
    SendCert,
    TrafficSelectorPolicy,
    TrustStore,
    VolumeLifetime,
    config_path,
)
from responder.pem_files import load_certificates, load_credential, load_crls
from responder.server.settings import (
    DEFAULT_LISTENERS,
    LOG_LEVELS,
    Listener,
    ServerSettings,
    TunSettings,
    WebSettings,
)
from responder.toml_values import (
    expect as _expect,
)
from responder.toml_values import (
    file_errors as _file_errors,
)
from responder.toml_values import (
    in_table as _in_table,
)
from responder.toml_values import (
    join_key as _join,
)
from responder.toml_values import (
    named_tables as _named_tables,
)
from responder.toml_values import (
    number as _number,
)
from responder.toml_values import (
    parsed as _parsed,
)
from responder.toml_values import (
    path_value as _path,
)
from responder.toml_values import (
    renamed as _renamed,
)
from responder.toml_values import (
    required as _required,
)
from responder.toml_values import (
    strings as _strings,
)

__all__ = [
    "DEFAULT_LISTENERS",
    "KEYS",
    "LOG_LEVELS",
    "FileConfig",
    "Listener",
    "ServerSettings",
    "load_config",
    "load_config_path",
]

#: The name :class:`ServerSettings` had while it lived here; kept for programs that embed the responder.
FileConfig = ServerSettings


_LIFETIME_KEYS: Final = ("rekey_time", "life_time", "rand_time")
_PEER_LIFE_KEYS: Final = (*_LIFETIME_KEYS, "dpd_delay", "dpd_timeout")
_VOLUME_KEYS: Final = ("rekey_bytes", "life_bytes", "rekey_packets", "life_packets")
_CHILD_KEYS: Final = (
    "local_ts",
    "remote_ts",
    "esp_proposals",
    "mode",
    "pool",
    "refuse",
    "backend",
    "replay_window",
    *_LIFETIME_KEYS,
    *_VOLUME_KEYS,
    "dscp",
    "df_bit",
)
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*")
_UNIT_SECONDS: Final = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: The keys each table accepts; ``NAME`` stands for a table name chosen by the user.
KEYS: Final[Mapping[str, tuple[str, ...]]] = types.MappingProxyType(
    {
        "": ("responder", "certificates", "tls", "keylog", "web", "tun", "pools", "peers", "lab", "impair"),
        "responder": (
            "id",
            "listen",
            "proposals",
            "prefer_initiator_order",
            "window",
            "childless",
            "fragmentation",
            "log_level",
            "limits",
        ),
        "responder.limits": (
            "half_open_max",
            "half_open_per_source",
            "half_open_per_connection",
            "half_open_ipv6_prefix",
            "half_open_timeout",
            "cookie_threshold",
            "cookie_secret_lifetime",
            "ike_sa_max",
            "child_sa_max",
            "connections_max",
            "connections_per_source",
            "buffer_per_connection",
            "udp_receive_buffer",
            "prefix_timeout",
            "first_frame_timeout",
            "orphan_timeout",
            "corrupt_messages_max",
            "unprotected_replies_per_source",
            "unprotected_replies_max",
            "fragment_size",
            "fragments_max",
            "reassembly_size_max",
            "reassembly_timeout",
            "reassemblies_per_sa",
            "shutdown_timeout",
            "shutdown_grace",
            "slow_reader_timeout",
            "log_lines_per_source",
            "log_lines_max",
        ),
        "certificates": (
            "cert",
            "key",
            "cacerts",
            "crls",
            "accept_server_auth",
            "accept_client_auth",
            "min_rsa_bits",
            "rsa_pss",
        ),
        "tls": ("cert", "key"),
        "keylog": ("dir",),
        "web": ("listen", "allow_remote", "history_messages", "history_closed"),
        "tun": ("name", "addresses", "mtu"),
        "pools.NAME": ("addrs", "dns"),
        "peers.NAME": (
            "remote_id",
            "auth",
            "psk",
            "local_auth",
            "cacerts",
            "send_cert",
            "local_id",
            "children",
            *_PEER_LIFE_KEYS,
        ),
        "peers.NAME.children.NAME": _CHILD_KEYS,
        "lab": ("any_id_psk", "pubkey", "children", *_PEER_LIFE_KEYS),
        "lab.children.NAME": _CHILD_KEYS,
        "impair": IMPAIRMENT_NAMES,
    }
)

_T = TypeVar("_T")


# ---------------------------------------------------------------------------
# Paths, types and errors
# ---------------------------------------------------------------------------


def _table(value: object, path: str, keys: str) -> dict[str, Any]:
    """``value`` as a table whose keys are all in ``KEYS[keys]``."""
    table: dict[str, Any] = _expect(value, dict, "a table", path)
    known = KEYS[keys]
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            where = f"[{path}]" if path else "the top level"
            hint = f"did you mean {close[0]!r}?" if close else f"{where} takes {', '.join(known)}"
            raise ConfigError(f"unknown key; {hint}", _join(path, key))
    return table


def _duration(value: object, path: str) -> float:
    """Seconds: a number, or a string with swanctl.conf's units (``"90"``, ``"10m"``, ``"4h"``, ``"1d"``)."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ConfigError(f'{value!r} is not a duration such as 30, "90s", "10m", "4h" or "1d"', path)
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return _number(value, path)


def _lifetime(table: Mapping[str, Any], path: str, default: Lifetime) -> Lifetime | None:
    """A :class:`Lifetime` from the keys given, the others derived as strongSwan does; ``None`` if none."""
    given = {key: _duration(table[key], _join(path, key)) for key in _LIFETIME_KEYS if key in table}
    if not given:
        return None
    with config_path(path):
        return Lifetime.derive(
            given.get("rekey_time", default.rekey_time), given.get("life_time"), given.get("rand_time")
        )


def _volume(table: Mapping[str, Any], path: str) -> VolumeLifetime | None:
    """A :class:`VolumeLifetime` from the keys given, a missing hard limit derived; ``None`` if none."""
    keys = [key for key in _VOLUME_KEYS if key in table]
    given = {key: _expect(table[key], int, "a whole number", _join(path, key)) for key in keys}
    if not given:
        return None
    with config_path(path):
        return VolumeLifetime.derive(**given)


def _outer(table: Mapping[str, Any], path: str) -> OuterPolicy | None:
    """The outer marking of ESP over UDP: ``dscp`` ("copy", "clear" or 0-63), ``df_bit``."""
    if "dscp" not in table and "df_bit" not in table:
        return None
    dscp = table.get("dscp", "copy")
    if isinstance(dscp, str):
        dscp = dscp.lower()
    df = _choice(table.get("df_bit", "copy"), DfPolicy, _join(path, "df_bit"))
    with _in_table(path, {"df": "df_bit"}):
        return OuterPolicy(dscp, df)


def _dpd(table: Mapping[str, Any], path: str) -> Dpd | None:
    if "dpd_delay" not in table and "dpd_timeout" not in table:
        return None
    delay = _duration(table.get("dpd_delay", 0), _join(path, "dpd_delay"))
    timeout = _duration(table.get("dpd_timeout", 0), _join(path, "dpd_timeout"))
    with _in_table(path, {"delay": "dpd_delay", "timeout": "dpd_timeout"}):
        return Dpd(delay, timeout)


def _choice(
    value: object, kind: type[Mode] | type[ChildlessPolicy] | type[SendCert] | type[DfPolicy], path: str
) -> Any:
    text = _expect(value, str, "a string", path)
    names = ", ".join(repr(member.value) for member in kind)
    try:
        return kind(text.lower())
    except ValueError:
        raise ConfigError(f"expected one of {names}, got {text!r}", path) from None


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


def _proposals(
    value: object, path: str, parse: Callable[[str], _T], defaults: Sequence[_T]
) -> tuple[_T, ...]:
    """A proposal list; the keyword ``default`` stands for the default proposals (as in swanctl)."""
    result: list[_T] = []
    for index, text in enumerate(_strings(value, path)):
        if text.strip().lower() == "default":
            result.extend(defaults)
        else:
            result.append(_parsed(parse, text, f"{path}[{index}]"))
    return tuple(result)


def _selectors(value: object, path: str) -> tuple[TrafficSelectorPolicy, ...]:
    result = []
    for index, text in enumerate(_strings(value, path)):
        item = f"{path}[{index}]"
        if text.strip().lower() == "dynamic":
            raise ConfigError(
                "strongSwan's 'dynamic' is not supported: list the addresses (a child with a pool "
                "narrows TSi to the leased address by itself)",
                item,
            )
        result.append(_parsed(TrafficSelectorPolicy.parse, text, item))
    return tuple(result)


def _children(value: object, path: str, keys: str, aliases: dict[str, str], model: str) -> list[ChildConfig]:
    children = []
    for index, (name, child_value) in enumerate(_named_tables(value, path).items()):
        child_path = _join(path, name)
        aliases[f"{model}[{index}].name"] = child_path
        aliases[f"{model}[{index}]"] = child_path
        table = _table(child_value, child_path, keys)
        arguments: dict[str, Any] = {}
        for key in ("local_ts", "remote_ts"):
            if key in table:
                arguments[key] = _selectors(table[key], _join(child_path, key))
        if "esp_proposals" in table:
            arguments["esp_proposals"] = _proposals(
                table["esp_proposals"],
                _join(child_path, "esp_proposals"),
                EspProposal.parse,
                DEFAULT_ESP_PROPOSALS,
            )
        if "mode" in table:
            arguments["mode"] = _choice(table["mode"], Mode, _join(child_path, "mode"))
        if "pool" in table:
            arguments["pool"] = _expect(table["pool"], str, "a string", _join(child_path, "pool"))
        if "refuse" in table:
            arguments["refuse"] = _expect(table["refuse"], bool, "a boolean", _join(child_path, "refuse"))
        if "backend" in table:
            arguments["backend"] = _expect(table["backend"], str, "a string", _join(child_path, "backend"))
        if "replay_window" in table:
            window = _join(child_path, "replay_window")
            arguments["replay_window"] = _expect(table["replay_window"], int, "an integer", window)
        lifetime = _lifetime(table, child_path, CHILD_LIFETIME)
        if lifetime is not None:
            arguments["lifetime"] = lifetime
        volume = _volume(table, child_path)
        if volume is not None:
            arguments["volume"] = volume
        outer = _outer(table, child_path)
        if outer is not None:
            arguments["outer"] = outer
        with _in_table(child_path):
            children.append(ChildConfig(name, **arguments))
    return children


def _pools(value: object, aliases: dict[str, str]) -> list[AddressPool]:
    pools = []
    for index, (name, pool_value) in enumerate(_named_tables(value, "pools").items()):
        path = _join("pools", name)
        aliases[f"pools[{index}].name"] = path
        aliases[f"pools[{index}]"] = path
        table = _table(pool_value, path, "pools.NAME")
        addrs_path = _join(path, "addrs")
        ipv4: ipaddress.IPv4Network | None = None
        ipv6: ipaddress.IPv6Network | None = None
        for item, text in enumerate(_strings(_required(table, "addrs", path), addrs_path)):
            try:
                network = ipaddress.ip_network(text.strip())
            except ValueError as exc:
                raise ConfigError(str(exc), f"{addrs_path}[{item}]") from None
            if (ipv4 if network.version == 4 else ipv6) is not None:
                raise ConfigError(
                    f"a pool takes one IPv{network.version} network; {text!r} is a second one",
                    f"{addrs_path}[{item}]",
                )
            if isinstance(network, ipaddress.IPv4Network):
                ipv4 = network
            else:
                ipv6 = network
        dns = []
        for item, text in enumerate(_strings(table.get("dns", []), _join(path, "dns"))):
            try:
                dns.append(ipaddress.ip_address(text.strip()))
            except ValueError as exc:
                raise ConfigError(str(exc), f"{_join(path, 'dns')}[{item}]") from None
        with _in_table(path, {"ipv4": "addrs", "ipv6": "addrs"}):
            pools.append(AddressPool(name, ipv4, ipv6, tuple(dns)))
    return pools


def _auth_method(table: Mapping[str, Any], key: str, path: str, default: str) -> str:
    if key not in table:
        return default
    text = _expect(table[key], str, "a string", _join(path, key))
    if text not in ("psk", "pubkey"):
        raise ConfigError(f"expected 'psk' or 'pubkey', got {text!r}", _join(path, key))
    return text


def _peer_auth(table: Mapping[str, Any], path: str, base_dir: Path | None) -> dict[str, Any]:
    """``auth``, ``local_auth``, ``psk``, ``cacerts`` and ``send_cert`` of a ``[peers.NAME]`` table
    (swanctl.conf's ``remote.auth``, ``local.auth``, secrets, ``remote.cacerts``, ``send_cert``)."""
    remote = _auth_method(table, "auth", path, "psk")
    local = _auth_method(table, "local_auth", path, remote)
    secret = None
    if "psk" in table or "psk" in (remote, local):
        psk_path = _join(path, "psk")
        psk_text = _expect(_required(table, "psk", path), str, "a string", psk_path)
        secret = _parsed(Secret.parse, psk_text, psk_path)
    cas: tuple[Any, ...] = ()
    if "cacerts" in table:
        cas = _certificate_files(table["cacerts"], _join(path, "cacerts"), base_dir)
        if remote != "pubkey":
            raise ConfigError("a CA constraint needs auth = 'pubkey'", _join(path, "cacerts"))

    def method(name: str, cas: tuple[Any, ...] = ()) -> PskAuth | PubkeyAuth:
        if name == "pubkey":
            return PubkeyAuth(cas)
        assert secret is not None  # required above whenever a side uses psk
        return PskAuth(secret)

    result: dict[str, Any] = {"auth": method(remote, cas)}
    if local != remote:
        result["local_auth"] = method(local)
    if "send_cert" in table:
        result["send_cert"] = _choice(table["send_cert"], SendCert, _join(path, "send_cert"))
    return result


def _certificate_files(value: object, path: str, base_dir: Path | None) -> tuple[Any, ...]:
    """The certificates of every file named in an array of paths."""
    certificates: list[Any] = []
    for index, item in enumerate(_expect(value, list, "an array of paths", path)):
        where = f"{path}[{index}]"
        with _file_errors(where):
            certificates += load_certificates(_path(item, where, base_dir))
    return tuple(certificates)


def _certificates_table(value: object, base_dir: Path | None) -> dict[str, Any]:
    """``[certificates]``: our certificate and key, the CAs and CRLs, the policy (Config keywords)."""
    table = _table(value, "certificates", "certificates")
    config: dict[str, Any] = {}
    if ("cert" in table) != ("key" in table):
        present, missing = ("cert", "key") if "cert" in table else ("key", "cert")
        raise ConfigError(f"missing: {present} needs {missing}", "certificates")
    if "cert" in table:
        cert_path = _path(table["cert"], "certificates.cert", base_dir)
        key_path = _path(table["key"], "certificates.key", base_dir)
        with _file_errors("certificates.cert"):
            config["credential"] = load_credential(cert_path, key_path)
    trust: dict[str, Any] = {}
    if "cacerts" in table:
        trust["anchors"] = _certificate_files(table["cacerts"], "certificates.cacerts", base_dir)
    if "crls" in table:
        crls: list[Any] = []
        for index, item in enumerate(_expect(table["crls"], list, "an array of paths", "certificates.crls")):
            where = f"certificates.crls[{index}]"
            with _file_errors(where):
                crls += load_crls(_path(item, where, base_dir))
        trust["crls"] = tuple(crls)
    for key in ("accept_server_auth", "accept_client_auth", "rsa_pss"):
        if key in table:
            trust[key] = _expect(table[key], bool, "a boolean", _join("certificates", key))
    if "min_rsa_bits" in table:
        trust["min_rsa_bits"] = _expect(table["min_rsa_bits"], int, "an integer", "certificates.min_rsa_bits")
    if trust:
        with config_path("certificates"):
            config["trust"] = TrustStore(**trust)
    return config


def _peers(value: object, aliases: dict[str, str], base_dir: Path | None) -> list[PeerConfig]:
    peers = []
    for index, (name, peer_value) in enumerate(_named_tables(value, "peers").items()):
        path = _join("peers", name)
        aliases[f"peers[{index}].name"] = path
        aliases[f"peers[{index}]"] = path
        table = _table(peer_value, path, "peers.NAME")
        aliases[f"peers[{index}].auth"] = _join(path, "auth" if "auth" in table else "psk")
        aliases[f"peers[{index}].local_auth"] = _join(path, "local_auth" if "local_auth" in table else "auth")
        remote_path = _join(path, "remote_id")
        remote_text = _expect(_required(table, "remote_id", path), str, "a string", remote_path)
        arguments: dict[str, Any] = {
            "remote_id": _parsed(IdPattern.parse, remote_text, remote_path),
            **_peer_auth(table, path, base_dir),
        }
        if "local_id" in table:
            local_path = _join(path, "local_id")
            local_text = _expect(table["local_id"], str, "a string", local_path)
            arguments["local_id"] = _parsed(Identity.parse, local_text, local_path)
        if "children" in table:
            children_path = _join(path, "children")
            arguments["children"] = tuple(
                _children(
                    table["children"],
                    children_path,
                    "peers.NAME.children.NAME",
                    aliases,
                    f"peers[{index}].children",
                )
            )
        _peer_lifecycle(table, path, arguments, "ike_lifetime", "dpd")
        with _in_table(path):
            peers.append(PeerConfig(name, **arguments))
    return peers


def _peer_lifecycle(
    table: Mapping[str, Any], path: str, arguments: dict[str, Any], lifetime_key: str, dpd_key: str
) -> None:
    """The IKE SA lifetime and the liveness checks of a ``[peers.NAME]`` or ``[lab]`` table."""
    lifetime = _lifetime(table, path, IKE_LIFETIME)
    if lifetime is not None:
        arguments[lifetime_key] = lifetime
    dpd = _dpd(table, path)
    if dpd is not None:
        arguments[dpd_key] = dpd


_LIMITS_CORE: Final[dict[str, type]] = {
    "half_open_max": int,
    "half_open_per_source": int,
    "half_open_per_connection": int,
    "half_open_ipv6_prefix": int,
    "half_open_timeout": float,
    "cookie_threshold": int,
    "cookie_secret_lifetime": float,
    "ike_sa_max": int,
    "child_sa_max": int,
    "orphan_timeout": float,
    "corrupt_messages_max": int,
    "unprotected_replies_per_source": float,
    "unprotected_replies_max": float,
    "fragment_size": int,
    "fragments_max": int,
    "reassembly_size_max": int,
    "reassembly_timeout": float,
    "reassemblies_per_sa": int,
}
_LIMITS_SHELL: Final[dict[str, type]] = {
    "connections_max": int,
    "connections_per_source": int,
    "buffer_per_connection": int,
    "udp_receive_buffer": int,
    "prefix_timeout": float,
    "first_frame_timeout": float,
    "shutdown_timeout": float,
    "shutdown_grace": float,
    "slow_reader_timeout": float,
    "log_lines_per_source": int,
    "log_lines_max": int,
}


def _limits(value: object) -> tuple[Limits, dict[str, Any]]:
    """The core's :class:`Limits` and the shell's limits (FileConfig keyword arguments)."""
    table = _table(value, "responder.limits", "responder.limits")
    core: dict[str, Any] = {}
    shell: dict[str, Any] = {}
    for key, item in table.items():
        path = _join("responder.limits", key)
        kind = _LIMITS_CORE.get(key) or _LIMITS_SHELL[key]
        number = _expect(item, int, "an integer", path) if kind is int else _number(item, path)
        (core if key in _LIMITS_CORE else shell)[key] = number
    with config_path("responder.limits"):
        return Limits(**core), shell


def _web(value: object) -> WebSettings:
    """``[web]``: the console's address (``listen``, default ``127.0.0.1:8080``) and what it keeps."""
    web = _table(value, "web", "web")
    more: dict[str, Any] = {}
    if "allow_remote" in web:
        more["allow_remote"] = _expect(web["allow_remote"], bool, "a boolean", "web.allow_remote")
    for key in ("history_messages", "history_closed"):
        if key in web:
            more[key] = _expect(web[key], int, "an integer", _join("web", key))
    listen = _expect(web.get("listen", str(WebSettings())), str, "a string", "web.listen")
    try:
        return WebSettings.parse(listen, **more)
    except ConfigError as exc:  # the text, its host or its port: all web.listen
        field = "listen" if exc.field in ("", "host", "port") else exc.field
        raise ConfigError(exc.message, _join("web", field)) from None


def _tun(value: object) -> TunSettings:
    """``[tun]``: the TUN device of children with ``backend = "tun"`` (name, addresses, MTU)."""
    table = _table(value, "tun", "tun")
    more: dict[str, Any] = {}
    if "name" in table:
        more["name"] = _expect(table["name"], str, "a string", "tun.name")
    if "addresses" in table:
        more["addresses"] = _strings(table["addresses"], "tun.addresses")
    if "mtu" in table:
        more["mtu"] = _expect(table["mtu"], int, "an integer", "tun.mtu")
    try:
        return TunSettings(**more)
    except ConfigError as exc:  # its fields are the table's keys, ``name`` included
        raise ConfigError(exc.message, f"tun.{exc.field}" if exc.field else "tun") from None


def _build(document: dict[str, Any], base_dir: Path | None) -> ServerSettings:
    _table(document, "", "")
    config: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    aliases: dict[str, str] = {
        "ike_proposals": "responder.proposals",
        "local_id": "responder.id",
        "window_size": "responder.window",
        "prefer_initiator_order": "responder.prefer_initiator_order",
        "childless": "responder.childless",
        "fragmentation": "responder.fragmentation",
        "limits": "responder.limits",
        "any_id_psk": "lab.any_id_psk",
        "lab_children": "lab.children",
        "lab_pubkey": "lab.pubkey",
        "credential": "certificates.cert",
        "trust": "certificates",
    }

    responder = _table(document.get("responder", {}), "responder", "responder")
    if "id" in responder:
        text = _expect(responder["id"], str, "a string", "responder.id")
        config["local_id"] = _parsed(Identity.parse, text, "responder.id")
    if "listen" in responder:
        settings["listeners"] = tuple(
            _parsed(Listener.parse, text, f"responder.listen[{index}]")
            for index, text in enumerate(_strings(responder["listen"], "responder.listen"))
        )
    if "proposals" in responder:
        config["ike_proposals"] = _proposals(
            responder["proposals"], "responder.proposals", IkeProposal.parse, DEFAULT_IKE_PROPOSALS
        )
    if "prefer_initiator_order" in responder:
        config["prefer_initiator_order"] = _expect(
            responder["prefer_initiator_order"], bool, "a boolean", "responder.prefer_initiator_order"
        )
    if "window" in responder:
        config["window_size"] = _expect(responder["window"], int, "an integer", "responder.window")
    if "childless" in responder:
        config["childless"] = _choice(responder["childless"], ChildlessPolicy, "responder.childless")
    if "fragmentation" in responder:
        config["fragmentation"] = _expect(
            responder["fragmentation"], bool, "a boolean", "responder.fragmentation"
        )
    if "log_level" in responder:
        level = _expect(responder["log_level"], str, "a string", "responder.log_level")
        settings["log_level"] = level.lower()
    if "limits" in responder:
        config["limits"], shell_limits = _limits(responder["limits"])
        settings.update(shell_limits)

    if "certificates" in document:
        config.update(_certificates_table(document["certificates"], base_dir))
    if "tls" in document:
        tls = _table(document["tls"], "tls", "tls")
        for key in ("cert", "key"):
            if key in tls:
                settings[f"tls_{key}"] = _path(tls[key], _join("tls", key), base_dir)
    if "keylog" in document:
        keylog = _table(document["keylog"], "keylog", "keylog")
        if "dir" in keylog:
            settings["keylog_dir"] = _path(keylog["dir"], "keylog.dir", base_dir)
    if "web" in document:
        settings["web"] = _web(document["web"])
    if "tun" in document:
        settings["tun"] = _tun(document["tun"])

    if "pools" in document:
        config["pools"] = tuple(_pools(document["pools"], aliases))
    if "peers" in document:
        config["peers"] = tuple(_peers(document["peers"], aliases, base_dir))
    if "lab" in document:
        lab = _table(document["lab"], "lab", "lab")
        if "pubkey" in lab:
            config["lab_pubkey"] = _expect(lab["pubkey"], bool, "a boolean", "lab.pubkey")
        if not config.get("lab_pubkey") or "any_id_psk" in lab:
            psk_text = _expect(_required(lab, "any_id_psk", "lab"), str, "a string", "lab.any_id_psk")
            config["any_id_psk"] = _parsed(Secret.parse, psk_text, "lab.any_id_psk")
        if "children" in lab:
            config["lab_children"] = tuple(
                _children(lab["children"], "lab.children", "lab.children.NAME", aliases, "lab_children")
            )
        _peer_lifecycle(lab, "lab", config, "lab_ike_lifetime", "lab_dpd")

    if "impair" in document:
        impair = _table(document["impair"], "impair", "impair")
        config["impair"] = Impairments()
        for key, value in impair.items():
            with config_path("impair"):
                config["impair"] = config["impair"].with_setting(key, value)

    with _renamed(aliases):
        core = Config(**config)
    shell_aliases = {
        "listeners": "responder.listen",
        "tls_cert": "tls.cert",
        "tls_key": "tls.key",
        "keylog_dir": "keylog.dir",
        "log_level": "responder.log_level",
        **{key: _join("responder.limits", key) for key in _LIMITS_SHELL},
    }
    with _renamed(shell_aliases):
        return ServerSettings(core, **settings)


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def load_config(data: bytes, *, base_dir: Path | None = None) -> ServerSettings:
    """The configuration in ``data``, the octets of a TOML file (UTF-8, a BOM tolerated).

    Relative paths (``tls.cert``, ``tls.key``, ``keylog.dir``) are taken
    relative to ``base_dir`` when it is given, and left as written otherwise.
    Every problem raises :class:`ConfigError` naming the key path.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"load_config takes bytes, not {type(data).__name__}")
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not UTF-8 (byte {exc.start} is invalid)") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"TOML syntax error: {exc}") from None
    except ValueError as exc:  # integers past Python's digit limit
        raise ConfigError(f"TOML value error: {exc}") from None
    except RecursionError:
        raise ConfigError("TOML syntax error: arrays or tables nested too deeply") from None
    return _build(document, base_dir)


def load_config_path(path: str | Path) -> ServerSettings:
    """The configuration in the file at ``path``; relative paths in it are relative to its directory."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {str(file)!r}: {exc.strerror or exc}") from None
    return load_config(data, base_dir=file.parent)
