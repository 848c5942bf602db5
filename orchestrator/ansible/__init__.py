"""Configuration of hosts through ansible-runner."""
