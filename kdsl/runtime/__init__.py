"""Launching kernels: the Kernel object, argument binding, array adapters, caching."""
