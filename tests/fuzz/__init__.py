"""Differential fuzzing of kdsl: random well-typed kernels checked on `cpu` and `sim` against numpy.

`kernels.py` holds the generator, the numpy evaluation with its error bound and the checker;
`test_fuzz.py` is the short run CI does; `python -m tests.fuzz --minutes 30 [--seed S]` is the long one."""
