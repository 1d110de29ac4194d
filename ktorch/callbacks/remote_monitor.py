"""`RemoteMonitor`: posts the epoch results to an HTTP server."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings

import numpy as np

from ktorch.callbacks.callback import Callback
from ktorch.trainers import distributed


class RemoteMonitor(Callback):
    """Sends the logs of every epoch to a server with an HTTP POST.

    The payload is `{"epoch": epoch, **logs}` in JSON: as the request body with
    `send_as_json=True`, else as the form field `field`. An unreachable server gives a
    warning, not an error. Only the main process (rank 0) sends under `torchrun`.

    Args:
        root: root URL of the server.
        path: path, relative to `root`, the events are posted to.
        field: form field holding the JSON data (when `send_as_json=False`).
        headers: optional dict of extra HTTP headers.
        send_as_json: send the data as an `application/json` body.

    Example:
        ```python
        monitor = ktorch.callbacks.RemoteMonitor(root="http://localhost:9000")
        model.fit(x, y, epochs=3, callbacks=[monitor])
        ```
    """

    def __init__(
        self,
        root: str = "http://localhost:9000",
        path: str = "/publish/epoch/end/",
        field: str = "data",
        headers: dict | None = None,
        send_as_json: bool = False,
    ):
        super().__init__()
        self.root = root
        self.path = path
        self.field = field
        self.headers = headers
        self.send_as_json = send_as_json

    def on_epoch_end(self, epoch, logs=None):
        if not distributed.is_main_process():
            return
        send = {"epoch": epoch}
        for key, value in (logs or {}).items():
            send[key] = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
        headers = dict(self.headers or {})
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("utf-8")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(
            self.root + self.path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except (urllib.error.URLError, OSError):
            warnings.warn(f"Could not reach RemoteMonitor root server at {self.root}", stacklevel=2)
