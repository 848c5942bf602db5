"""pulumi_openstack warns, on import, about old resource classes that no program uses; import
it once here with those warnings silenced, so they never drown the test report."""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_openstack  # noqa: F401
