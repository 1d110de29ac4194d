"""The digits demo trains to a useful accuracy and reports it faithfully."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("sklearn")

from ktorch.examples import digits  # noqa: E402


@pytest.mark.slow
def test_digits_demo_reaches_accuracy(capsys):
    accuracy, reload_identical = digits.main(epochs=15, verbose=0)
    out = capsys.readouterr().out
    printed = re.search(r"Test accuracy: (\d\.\d{4})", out)
    assert printed is not None, out
    assert float(printed.group(1)) == accuracy
    assert accuracy >= 0.9
    assert reload_identical
    assert "reloaded: identical predictions" in out
    predicted = re.search(r"Predicted: ([\d ]+)\n", out).group(1).split()
    true = re.search(r"True: +([\d ]+)\n", out).group(1).split()
    assert len(predicted) == len(true) == 12


def test_load_data_shapes():
    x_train, x_test, y_train, y_test = digits.load_data()
    assert x_train.shape[1:] == (8, 8, 1) and x_test.shape[1:] == (8, 8, 1)
    assert len(x_train) + len(x_test) == 1797
    assert len(x_train) == len(y_train) and len(x_test) == len(y_test)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert sorted(set(y_train.tolist())) == list(range(10))


def test_check_reload_reports_identical_predictions(capsys):
    x_test = digits.load_data()[1][:20]
    assert digits.check_reload(digits.build_model(), x_test)
    assert "identical predictions on 20 images" in capsys.readouterr().out


def test_check_reload_reports_a_difference(capsys, monkeypatch):
    import ktorch

    x_test = digits.load_data()[1][:20]
    # A reload that comes back with other weights must be caught.
    monkeypatch.setattr(ktorch.saving, "load_model", lambda path: digits.build_model())
    assert not digits.check_reload(digits.build_model(), x_test)
    assert "predictions differ" in capsys.readouterr().out
