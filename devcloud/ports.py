"""TCP ports of the local data centre, all on 127.0.0.1.

Rule of thumb: the service's well-known port plus 10000, so they are easy to recognise and clash
neither with the project's API (8000), PostgreSQL (5432) nor a real OpenStack on the same host.
"""

KEYSTONE = 15000
GLANCE = 19292
PLACEMENT = 18778
NOVA = 18774
NOVA_METADATA = 18775
CINDER = 18776
NEUTRON = 19696
SWIFT_PROXY = 18080
SWIFT_ACCOUNT = 16202
SWIFT_CONTAINER = 16201
SWIFT_OBJECT = 16200
#: The S3 relay instances use (services/s3_gateway.py); the one port not only on 127.0.0.1.
S3_GATEWAY = 18081
MARIADB = 13306
#: AMQP (the management plugin, whose usual port this is, is not enabled).
RABBITMQ = 15672
#: Erlang distribution port of the private RabbitMQ node (pinned; 25672 would be a system RabbitMQ's).
RABBITMQ_DIST = 35672
#: Reserved for devcloud/dns: Designate API, its mini-DNS, and BIND.
DESIGNATE = 19001
DESIGNATE_MDNS = 15354
BIND_DNS = 15353
#: BIND again, for the instances: on the external network's gateway address only (dns/layout.py),
#: never on loopback, where a system resolver may hold it.
INSTANCE_DNS = 53
BIND_RNDC = 15953
#: Reserved for devcloud/dcim (18090-18099): Nautobot's web server (8080 + 10000 is Swift's
#: proxy), its own PostgreSQL and its own Redis. Nautobot needs PostgreSQL (the cloud's MariaDB
#: will not do) and Redis (cache, locks); both are private to the DCIM.
DCIM_RANGE = range(18090, 18100)
NAUTOBOT = 18090
NAUTOBOT_POSTGRES = 18091
NAUTOBOT_REDIS = 18092
