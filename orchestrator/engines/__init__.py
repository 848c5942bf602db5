"""Stack engines behind `orchestrator.ports.Engine`.

- `embedded.EmbeddedEngine`: the adapter to the embedded Pulumi engine (`pulumi_embedded`, a
  package of its own), checkpoints in our PostgreSQL (`checkpoints.py`); the default where no
  `pulumi` CLI is installed.
- `automation.AutomationEngine`: the Pulumi Automation API, for sites with the `pulumi` CLI.
"""

from orchestrator.config import Settings


def engine_choice(settings: Settings) -> str:
    """Which engine runs: the configured one, or for `auto` the Automation API when the CLI exists."""
    if settings.engine == "auto":
        from orchestrator.engines.automation import cli_available

        return "automation" if cli_available() else "embedded"
    return settings.engine
