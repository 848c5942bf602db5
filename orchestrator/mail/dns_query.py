"""Asking the data centre's DNS (`Settings.dns_server`, `host:port`) what it serves: for the DNS
status check and for the DKIM key the health check verifies a signature with. Never the
system's resolver: the records that count are those the data centre's DNS publishes."""

from collections.abc import Callable

import dns.exception
import dns.rdatatype
import dns.resolver

from orchestrator.config import get_settings

NO_SERVER = "no DNS server configured (TONLE_DNS_SERVER)"


class DnsUnavailable(Exception):
    """The DNS server could not be asked (not configured, unreachable, or it answered an error)."""


def configured_server() -> str:
    server = get_settings().dns_server
    if not server:
        raise DnsUnavailable(NO_SERVER)
    return str(server)


def resolver_for(server: str, *, timeout: float = 5.0) -> dns.resolver.Resolver:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise DnsUnavailable(f"DNS server {server!r} is not host:port")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host.strip("[]")]
    resolver.port = int(port)
    resolver.lifetime = timeout
    resolver.cache = None
    return resolver


def served_values(resolver: dns.resolver.Resolver, name: str, record_type: str) -> set[str]:
    """What the server answers for `name`: addresses, `<pref> <host>.` for MX, each TXT record's
    strings joined. Empty when the name or type does not exist."""
    try:
        answer = resolver.resolve(f"{name.rstrip('.')}.", record_type, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return set()
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise DnsUnavailable(
            f"DNS server {resolver.nameservers[0]}:{resolver.port} did not answer for {name}: {exc}"
        ) from exc
    values = set()
    for rdata in answer:
        if rdata.rdtype == dns.rdatatype.TXT:
            values.add(b"".join(rdata.strings).decode(errors="replace"))
        elif rdata.rdtype == dns.rdatatype.MX:
            values.add(f"{rdata.preference} {rdata.exchange.to_text()}")
        else:
            values.add(rdata.to_text())
    return values


def dkim_dnsfunc(server: str) -> Callable[..., bytes | None]:
    """A `dnsfunc` for dkimpy: the TXT record of a (bytes) name, from `server`."""

    def lookup(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode() if isinstance(name, bytes) else name
        found = served_values(resolver_for(server, timeout=timeout), text, "TXT")
        return next(iter(sorted(found))).encode() if found else None

    return lookup
