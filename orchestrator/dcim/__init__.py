"""Co-location through the data centre's DCIM: automatic placement (`placement`, pure) and the
Nautobot adapter of the `ports.Dcim` port."""
