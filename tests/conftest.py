"""Session-wide settings: compiled kernels go to a cache directory of this test run only."""
import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_kernel_cache(tmp_path_factory):
    os.environ["KDSL_CACHE_DIR"] = str(tmp_path_factory.mktemp("kdsl-cache"))
