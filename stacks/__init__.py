"""Pulumi stack programs, one module per offering, built from shared components."""
