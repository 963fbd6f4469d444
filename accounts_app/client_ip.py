"""The client's address, for rate limits keyed per address (sign-in, the
device-login start). REMOTE_ADDR is the proxy's address when opsgate runs
behind one: every client would share one bucket. X-Forwarded-For is believed
only when REMOTE_ADDR is a trusted proxy (OPSGATE_TRUSTED_PROXIES, CIDRs,
none by default): reading it right to left, the first address that is not a
trusted proxy is the client (anything further left the client could forge)."""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[Network, ...]:
    # portal/settings.py refuses a value that is not an address or CIDR.
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def _address(value: str):
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _is_trusted(address, networks) -> bool:
    return any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    networks = _trusted(tuple(settings.OPSGATE.get("TRUSTED_PROXIES", ())))
    peer = _address(remote)
    if not networks or peer is None or not _is_trusted(peer, networks):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [h for h in (part.strip() for part in forwarded.split(",")) if h]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage: stop at the last address a trusted proxy added
        client = address
        if not _is_trusted(address, networks):
            break
    return str(client)
