"""DNS zones and record sets in the data centre's DNS (Designate)."""

from collections.abc import Sequence

import pulumi
import pulumi_openstack as openstack

from stacks.labels import Labels

DEFAULT_TTL = 300  # short enough that a DR failover's repointing takes effect quickly


def fqdn(name: str) -> str:
    """Designate wants absolute names, with the trailing dot."""
    return name if name.endswith(".") else f"{name}."


def zone(labels: Labels, *, domain: str, email: str) -> openstack.dns.Zone:
    return openstack.dns.Zone(
        f"zone-{domain}",
        name=fqdn(domain),
        email=email,
        ttl=DEFAULT_TTL,
        type="PRIMARY",
        description=labels.description("zone"),
    )


def record(
    labels: Labels,
    *,
    zone: openstack.dns.Zone,
    name: str,
    record_type: str,
    records: Sequence[pulumi.Input[str]],
) -> openstack.dns.RecordSet:
    return openstack.dns.RecordSet(
        f"{record_type.lower()}-{name}",
        zone_id=zone.id,
        name=fqdn(name),
        type=record_type,
        records=list(records),
        ttl=DEFAULT_TTL,
        description=labels.description(f"{record_type} record"),
    )


#: The longest text one TXT string carries here: DNS allows 255 characters, and Designate counts
#: the two quotes among them. Longer text (a DKIM key) is split into several strings.
TXT_STRING_MAX = 253


def txt(text: str) -> str:
    """A TXT record's data: quoted strings of at most `TXT_STRING_MAX` characters, as Designate and
    BIND expect; a reader joins them back into the one text."""
    chunks = [text[start : start + TXT_STRING_MAX] for start in range(0, len(text), TXT_STRING_MAX)] or [""]
    return " ".join('"' + chunk.replace('"', '\\"') + '"' for chunk in chunks)


def address_records(
    labels: Labels, *, domain: str, email: str, names: Sequence[str], address: pulumi.Input[str]
) -> list[str]:
    """A records for `domain` and further `names` pointing at `address`.

    Names under `domain` go into its zone; any other name gets a zone of its own, since the
    service may only write zones it owns. Returns every name served.
    """
    main = zone(labels, domain=domain, email=email)
    served = [domain]
    record(labels, zone=main, name=domain, record_type="A", records=[address])
    for name in names:
        if name == domain or name in served:
            continue
        target = main if name.endswith(f".{domain}") else zone(labels, domain=name, email=email)
        record(labels, zone=target, name=name, record_type="A", records=[address])
        served.append(name)
    return served
