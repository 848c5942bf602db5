"""Small building blocks shared by the offering programs.

Plain functions returning plain records of resources, not ComponentResources: the resources stay
at the top of the stack, so their URNs (and the engine's diffs) never change when a component is
reorganised.
"""
