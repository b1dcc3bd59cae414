"""The `interpret` target: a kernel's Python function run program by program on numpy.

`kl.*` builtins and block operators go through the compiler's own typing rules
(`kdsl.frontend.semantic`) with an evaluating builder that computes each op at
once (`numpy_ops`) instead of recording IR, so both targets share one set of rules.
"""
