"""DNS of the local data centre, as an outside client sees it.

Only openstacksdk talks to the cloud (one test through the embedded engine's Designate
handlers, which call it); answers are checked by asking the cloud's BIND with
`dig` (from Debian's bind9-dnsutils, which `devcloud up` installs), as a resolver would.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from pulumi_embedded.openstack.resources import dns_identity

pytestmark = pytest.mark.cloud

BIND = ("127.0.0.1", 15353)  # devcloud/ports.py BIND_DNS
PROPAGATION_TIMEOUT = 30.0  # seconds; ~1-2 s is normal
DIG = ["dig", f"@{BIND[0]}", "-p", str(BIND[1]), "+norec", "+time=1", "+tries=1", "+noall", "+comments", "+answer"]


@pytest.fixture(scope="module")
def dns_conn(devcloud: Any) -> Any:
    """The `primary` site's connection (the `tonle` project member, as a ministry would use),
    from tests/cloud/conftest.py's `devcloud` fixture, which brings the cloud up if needed."""
    if shutil.which("dig") is None:
        pytest.skip("dig not installed (Debian package bind9-dnsutils; `python -m devcloud up` installs it)")
    conn = devcloud.primary
    try:
        conn.dns.get_endpoint()
    except Exception as exc:  # noqa: BLE001 - the sdk raises several kinds for "not in the catalog"
        # Only a cloud brought up without DNS skips; a DNS that is there but broken fails below.
        pytest.skip(f"no `dns` service in the local data centre's catalog (DEVCLOUD_WITHOUT=dns?): {exc}")
    return conn


def dig(name: str, rtype: str) -> tuple[str, list[str]]:
    """(status, answers) from our BIND, e.g. ("NOERROR", ["192.0.2.10"])."""
    out = subprocess.run(
        [*DIG, name, rtype],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    status = "TIMEOUT"
    answers = []
    for line in out.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        elif line and not line.startswith(";"):
            fields = line.split(None, 4)
            if len(fields) == 5 and fields[3] == rtype:
                answers.append(fields[4])
    return status, sorted(answers)


def eventually(what: str, probe: Callable[[], Any], ok: Callable[[Any], bool]) -> Any:
    """Poll `probe()` until `ok(result)`, at most PROPAGATION_TIMEOUT seconds."""
    deadline = time.monotonic() + PROPAGATION_TIMEOUT
    while True:
        result = probe()
        if ok(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {result!r} after {PROPAGATION_TIMEOUT:.0f} s")
        time.sleep(0.3)


def answers_are(*expected: str) -> Callable[[tuple[str, list[str]]], bool]:
    return lambda result: result == ("NOERROR", sorted(expected))


def _zone_name(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}.tonle-test.gov."


def test_zone_with_web_and_mail_records_is_served_by_bind(dns_conn: Any) -> None:
    conn = dns_conn
    name = _zone_name("web")
    zone = conn.dns.create_zone(name=name, email=f"hostmaster@{name.rstrip('.')}", ttl=300)
    try:
        conn.dns.create_recordset(zone, name=f"www.{name}", type="A", records=["192.0.2.10"], ttl=60)
        conn.dns.create_recordset(zone, name=name, type="MX", records=[f"10 mail.{name}"], ttl=60)
        txt = conn.dns.create_recordset(zone, name=name, type="TXT", records=['"v=spf1 mx -all"'], ttl=60)

        eventually("A www", partial(dig, f"www.{name}", "A"), answers_are("192.0.2.10"))
        eventually("MX", partial(dig, name, "MX"), answers_are(f"10 mail.{name}"))
        eventually("TXT", partial(dig, name, "TXT"), answers_are('"v=spf1 mx -all"'))

        conn.dns.update_recordset(txt, records=['"v=spf1 mx a -all"'])
        eventually("updated TXT", partial(dig, name, "TXT"), answers_are('"v=spf1 mx a -all"'))
        soa = dig(name, "SOA")[1][0]
        assert soa.startswith("ns1.devcloud.tonle.test. "), soa
    finally:
        conn.dns.delete_zone(zone, ignore_missing=True)

    # BIND no longer serves it (REFUSED: not authoritative, and recursion is off).
    eventually("deleted zone in BIND", lambda: dig(name, "SOA")[0], lambda s: s in ("REFUSED", "NXDOMAIN"))
    eventually("deleted zone in the API", lambda: conn.dns.find_zone(name, ignore_missing=True), lambda z: z is None)


def test_an_engine_destroy_of_records_then_their_zone_leaves_nothing_in_bind(dns_conn: Any) -> None:
    """A destroy deletes a zone's record sets, then at once the zone. Designate removes a record
    set by updating its zone, and that update re-adds a zone missing from BIND: a zone deleted
    while it was in flight came back into BIND, forgotten by Designate. So the engine's record-set
    delete returns once BIND no longer answers the record, before the zone's delete can start."""
    conn = dns_conn
    name = _zone_name("destroy")
    zones, record_sets = dns_identity.Zone(), dns_identity.RecordSet()
    zone = zones.create(conn, {"name": name, "email": f"hostmaster@{name.rstrip('.')}", "ttl": 300})
    try:
        hosts = {"www": "192.0.2.10", "mail": "192.0.2.11"}
        created = {
            host: record_sets.create(
                conn, {"zoneId": zone.id, "name": f"{host}.{name}", "type": "A", "records": [address]}
            )
            for host, address in hosts.items()
        }
        for host, address in hosts.items():
            eventually(f"A {host}", partial(dig, f"{host}.{name}", "A"), answers_are(address))
        for host, record_set in created.items():
            record_sets.delete(conn, record_set.id, record_set.outputs)
            assert dig(f"{host}.{name}", "A") == ("NXDOMAIN", []), f"{host} still answered after its delete returned"
        zones.delete(conn, zone.id, zone.outputs)
    finally:
        conn.dns.delete_zone(zone.id, ignore_missing=True)

    eventually("deleted zone in BIND", lambda: dig(name, "SOA")[0], lambda s: s in ("REFUSED", "NXDOMAIN"))
    time.sleep(3)  # the overtaken update re-added the zone within a second or two of its delete
    assert dig(name, "SOA")[0] in ("REFUSED", "NXDOMAIN"), "the deleted zone came back into BIND"


def test_changes_within_one_second_all_reach_bind(dns_conn: Any) -> None:
    """Guards the serial fix: several record sets in the same second must all appear."""
    conn = dns_conn
    name = _zone_name("burst")
    zone = conn.dns.create_zone(name=name, email=f"hostmaster@{name.rstrip('.')}", ttl=300)
    try:
        eventually("zone in BIND", lambda: dig(name, "SOA")[0], lambda s: s == "NOERROR")
        hosts = [f"h{i}" for i in range(6)]
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(
                pool.map(
                    lambda i: conn.dns.create_recordset(
                        zone, name=f"{hosts[i]}.{name}", type="A", records=[f"192.0.2.{i + 1}"]
                    ),
                    range(len(hosts)),
                )
            )
        for i, host in enumerate(hosts):
            eventually(f"A {host}", partial(dig, f"{host}.{name}", "A"), answers_are(f"192.0.2.{i + 1}"))
    finally:
        conn.dns.delete_zone(zone, ignore_missing=True)


def test_a_project_may_have_more_than_ten_zones(dns_conn: Any) -> None:
    """Designate's default quota is 10 zones per project; ministries need more."""
    conn = dns_conn
    names = [_zone_name(f"q{i}") for i in range(12)]

    def create(name: str) -> Any:
        return conn.dns.create_zone(name=name, email=f"hostmaster@{name.rstrip('.')}", ttl=300)

    zones: list[Any] = []
    try:
        # In parallel, as several orders would: MariaDB, not SQLite, makes this safe.
        with ThreadPoolExecutor(max_workers=4) as pool:
            zones = list(pool.map(create, names))
        assert len({z.id for z in zones}) == 12
    finally:
        for zone in zones:
            conn.dns.delete_zone(zone, ignore_missing=True)
    for name in names:
        eventually(f"{name} gone", partial(conn.dns.find_zone, name, ignore_missing=True), lambda z: z is None)
