"""`python -m tests.fuzz --minutes 30 [--seed S]`: the long differential fuzzing run (tests/fuzz/run.py)."""
import sys

from tests.fuzz.run import main

sys.exit(main())
