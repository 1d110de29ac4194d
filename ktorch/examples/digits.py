"""Trains a small convnet on scikit-learn's 8x8 digits with the Keras API.

The data ships with scikit-learn (no download). Run with `python -m ktorch.examples.digits`.
The trained model is saved to a `.keras` file and loaded back; the process exits non-zero when
the test accuracy stays below 0.95 or when the reloaded model predicts differently.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import NamedTuple

import numpy as np

MIN_ACCURACY = 0.95


def load_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loads the digits as channels_last images in [0, 1] and splits them 80/20.

    Args:
        seed: seed of the stratified train/test split.

    Returns:
        `(x_train, x_test, y_train, y_test)`, images shaped `(n, 8, 8, 1)` float32, labels int64.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    y = digits.target.astype("int64")
    return tuple(train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y))


def build_model():
    """Builds and compiles the convnet: two convolutions, global pooling, dropout, softmax."""
    import ktorch
    from ktorch import layers

    model = ktorch.Sequential(
        [
            ktorch.Input((8, 8, 1)),
            layers.Conv2D(32, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu", padding="same"),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Result(NamedTuple):
    """What the demo found: the test accuracy and whether the reloaded model agrees."""

    accuracy: float
    reload_identical: bool


def check_reload(model, x: np.ndarray) -> bool:
    """Saves `model` to a `.keras` file, loads it back and compares the predictions on `x`.

    Args:
        model: the trained model.
        x: inputs to predict on.

    Returns:
        Whether the reloaded model's predictions are identical to the model's.
    """
    import ktorch

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "digits.keras")
        model.save(path)
        reloaded = ktorch.saving.load_model(path)
    expected = model.predict(x, verbose=0)
    received = reloaded.predict(x, verbose=0)
    identical = bool(np.array_equal(expected, received))
    if identical:
        print(f"Saved to digits.keras and reloaded: identical predictions on {len(x)} images.")
    else:
        difference = float(np.max(np.abs(expected - received)))
        print(f"Saved to digits.keras and reloaded: predictions differ (max |diff| {difference}).")
    return identical


def main(epochs: int = 40, batch_size: int = 32, verbose: int | str = 1) -> Result:
    """Trains, evaluates, shows a few predictions, then saves and reloads the model.

    Args:
        epochs: training epochs.
        batch_size: samples per step.
        verbose: `fit`'s verbosity (1: a live progress bar per epoch).

    Returns:
        The test accuracy, as printed, and whether the reloaded model predicts identically.
    """
    import ktorch

    ktorch.utils.set_random_seed(0)
    x_train, x_test, y_train, y_test = load_data()
    model = build_model()
    model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_split=0.1,
        verbose=verbose,
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    accuracy = round(float(accuracy), 4)
    print(f"Test accuracy: {accuracy:.4f}")
    predicted = model.predict(x_test[:12], verbose=0).argmax(axis=-1)
    print("Predicted:", " ".join(str(int(d)) for d in predicted))
    print("True:     ", " ".join(str(int(d)) for d in y_test[:12]))
    return Result(accuracy, check_reload(model, x_test))


def cli(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    result = main(epochs=args.epochs, batch_size=args.batch_size)
    if result.accuracy < MIN_ACCURACY:
        print(f"Test accuracy {result.accuracy:.4f} is below {MIN_ACCURACY}.", file=sys.stderr)
        return 1
    if not result.reload_identical:
        print("The model loaded from its .keras file predicts differently.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
