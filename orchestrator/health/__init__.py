"""Health checks of provisioned services, as an outside client would make them."""
