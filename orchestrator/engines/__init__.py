"""Stack engines behind `orchestrator.ports.Engine`.

- `orchestrator.engines.embedded.engine.EmbeddedEngine`: runs the Pulumi programs in-process
  with checkpoints in PostgreSQL and the OpenStack provider layer (`engines.openstack`);
  the default where no `pulumi` CLI is installed.
"""
