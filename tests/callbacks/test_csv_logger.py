"""CSVLogger: rows equal the History; byte-for-byte the file Keras 3 writes for the same logs."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import ktorch
from ktorch.trainers import distributed
from tests.keras_ref import keras_module


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def _model():
    model = ktorch.Sequential([ktorch.layers.Dense(4, activation="relu"), ktorch.layers.Dense(1)])
    model.compile("sgd", loss="mse", metrics=["mae"])
    return model


def _rows(path, delimiter=","):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def test_rows_equal_history(tmp_path):
    path = tmp_path / "training.log"
    x, y = _data()
    history = _model().fit(
        x,
        y,
        validation_split=0.25,
        epochs=3,
        verbose=0,
        callbacks=[ktorch.callbacks.CSVLogger(str(path))],
    )
    rows = _rows(path)
    assert list(rows[0]) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for name, values in history.history.items():
        assert [float(r[name]) for r in rows] == values


def test_without_validation_val_columns_are_na(tmp_path):
    path = tmp_path / "training.log"
    x, y = _data()
    _model().fit(x, y, epochs=2, verbose=0, callbacks=[ktorch.callbacks.CSVLogger(path)])
    rows = _rows(path)
    assert list(rows[0]) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert all(r["val_loss"] == "NA" and r["val_mae"] == "NA" for r in rows)


def test_append_and_separator(tmp_path):
    path = tmp_path / "training.log"
    x, y = _data()
    model = _model()
    logger = ktorch.callbacks.CSVLogger(str(path), separator=";", append=True)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[logger])
    model.fit(x, y, epochs=3, verbose=0, callbacks=[logger])
    rows = _rows(path, delimiter=";")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 0, 1, 2]
    assert path.read_text().count("epoch") == 1


def test_overwrites_without_append(tmp_path):
    path = tmp_path / "training.log"
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[ktorch.callbacks.CSVLogger(path)])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ktorch.callbacks.CSVLogger(path)])
    assert len(_rows(path)) == 1


@pytest.mark.parametrize("append", [False, True])
def test_same_file_as_keras(tmp_path, append):
    keras = keras_module()
    logs = [
        {"loss": 0.5, "accuracy": 0.25, "val_loss": 0.75},
        {"loss": 0.125, "accuracy": 0.5, "val_loss": 0.625, "note": "text"},
        {"loss": 1e-8, "accuracy": np.float32(0.75), "val_loss": [1, 2]},
    ]
    contents = []
    for module, name in ((ktorch, "ours.csv"), (keras, "keras.csv")):
        path = tmp_path / name
        if append:
            path.write_text("")
        for _ in range(2 if append else 1):
            logger = module.callbacks.CSVLogger(str(path), separator="\t", append=append)
            logger.on_train_begin()
            for epoch, epoch_logs in enumerate(logs):
                logger.on_epoch_end(epoch, dict(epoch_logs))
            logger.on_train_end()
        contents.append(path.read_bytes())
    assert contents[0] == contents[1]


def test_only_the_main_process_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "is_main_process", lambda: False)
    path = tmp_path / "training.log"
    x, y = _data()
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[ktorch.callbacks.CSVLogger(path)])
    assert not path.exists()
