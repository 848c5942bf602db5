"""Configuration and launchers of the cloud's services, one module per service."""
