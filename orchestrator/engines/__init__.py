"""Stack engines behind `orchestrator.ports.Engine`.

- `embedded.EmbeddedEngine`: the adapter to the embedded Pulumi engine (`pulumi_embedded`, a
  package of its own), checkpoints in our PostgreSQL (`checkpoints.py`); the default where no
  `pulumi` CLI is installed.
- `automation.AutomationEngine`: the Pulumi Automation API, for sites with the `pulumi` CLI.
"""
