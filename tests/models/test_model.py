"""Subclassed models: layers held in containers filled after assignment are tracked."""

import numpy as np
import torch

import ktorch
from ktorch import layers


class Blocks(ktorch.Model):
    def __init__(self):
        super().__init__()
        self.blocks = []
        for units in (8, 4):
            self.blocks.append(layers.Dense(units, activation="relu"))
        self.head = layers.Dense(1)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_layers_appended_to_a_list_are_trained():
    model = Blocks()
    model.compile(optimizer=ktorch.optimizers.SGD(0.1), loss="mse")
    x, y = np.random.rand(32, 3).astype("float32"), np.random.rand(32, 1).astype("float32")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert len(model.trainable_weights) == 6
    assert "blocks.0.kernel" in model.state_dict()
    assert isinstance(model.blocks, torch.nn.ModuleList)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))


def test_plain_lists_of_values_are_left_alone():
    class Sizes(ktorch.Model):
        def __init__(self):
            super().__init__()
            self.sizes = []
            self.sizes.append(3)
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Sizes()
    model(torch.ones(1, 4))
    assert model.sizes == [3]
