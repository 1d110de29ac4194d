import os
import tempfile

import pytest

# Tests never touch the user's ~/.ktorch.
os.environ.setdefault("KTORCH_HOME", tempfile.mkdtemp(prefix="ktorch-test-home-"))


@pytest.fixture(autouse=True)
def _seed():
    import ktorch

    ktorch.utils.set_random_seed(0)
    yield
