"""SGD specifics."""

import numpy as np

import ktorch


def test_plain_sgd_state_round_trips_without_momentum_slot():
    model = ktorch.Sequential([ktorch.Input((3,)), ktorch.layers.Dense(2)])
    model.compile(optimizer=ktorch.optimizers.SGD(learning_rate=0.1), loss="mse")
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    store = {}
    model.optimizer.save_own_variables(store)
    other = ktorch.optimizers.SGD(learning_rate=0.1)
    other.build(model.trainable_weights)
    other.load_own_variables(store)
    assert other.iterations == model.optimizer.iterations == 1
