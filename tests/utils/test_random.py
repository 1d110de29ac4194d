import random

import numpy as np
import pytest
import torch

import ktorch


def test_set_random_seed_seeds_everything():
    ktorch.utils.set_random_seed(1337)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    ktorch.utils.set_random_seed(1337)
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())


def test_set_random_seed_validates():
    with pytest.raises(ValueError, match="seed"):
        ktorch.utils.set_random_seed(-1)
