"""`ProgbarLogger`: the Keras-style live progress bar (tqdm) and per-epoch lines."""

from __future__ import annotations

import sys
import time

from ktorch.callbacks.callback import Callback

_REFRESH_SECONDS = 0.1


def format_logs(logs) -> str:
    parts = []
    for key, value in logs.items():
        if isinstance(value, float):
            value = f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.4e}"
        parts.append(f"{key}: {value}")
    return " - ".join(parts)


def _format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds * 1e6:.0f}us"


class ProgbarLogger(Callback):
    """Prints progress: a live bar per epoch (`verbose=1`) or one line per epoch (`verbose=2`).

    `fit`, `evaluate` and `predict` add it themselves when `verbose` is not 0.
    """

    def __init__(self):
        super().__init__()
        self._bar = None
        self._mode = None
        self._seen = 0
        self._start = 0.0
        self._last_refresh = 0.0
        self._in_fit = False

    @property
    def verbose(self) -> int:
        return self.params.get("verbose", 1)

    # ---------------------------------------------------------------- helpers

    def _open(self, mode: str) -> None:
        self._mode = mode
        self._seen = 0
        self._start = time.monotonic()
        self._last_refresh = 0.0
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.params.get("steps"),
                file=sys.stdout,
                bar_format="{n_fmt}/{total_fmt} {bar:20} {elapsed} {desc}",
                ascii=" =",
                dynamic_ncols=True,
                leave=True,
            )

    def _advance(self, logs) -> None:
        self._seen += 1
        bar = self._bar
        if bar is None:
            return
        bar.update(1)
        now = time.monotonic()
        if logs is not None and now - self._last_refresh >= _REFRESH_SECONDS:
            # Reading logs makes the metrics' values host-side: only as often as the bar redraws.
            self._last_refresh = now
            bar.set_description_str(self._postfix(logs), refresh=False)

    def _postfix(self, logs) -> str:
        per_step = (time.monotonic() - self._start) / max(self._seen, 1)
        text = f"{_format_time(per_step)}/step"
        formatted = format_logs(logs) if logs else ""
        return f"{text} - {formatted}" if formatted else text

    def _close(self, logs) -> None:
        elapsed = time.monotonic() - self._start
        if self._bar is not None:
            self._bar.set_description_str(self._postfix(logs or {}), refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            per_step = elapsed / max(self._seen, 1)
            line = (
                f"{self._seen}/{self.params.get('steps') or self._seen} - "
                f"{_format_time(elapsed)} - {_format_time(per_step)}/step"
            )
            if logs:
                line += " - " + format_logs(logs)
            print(line, flush=True)

    # ------------------------------------------------------------------ hooks

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose:
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')}", flush=True)
        self._open("train")

    def on_train_batch_end(self, batch, logs=None):
        self._advance(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._close(logs)

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._open("test")

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self._advance(logs)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._close(logs)

    def on_predict_begin(self, logs=None):
        self._open("predict")

    def on_predict_batch_end(self, batch, logs=None):
        self._advance(None)

    def on_predict_end(self, logs=None):
        self._close(None)
