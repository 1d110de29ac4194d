"""RemoteMonitor: epoch logs posted to a local HTTP server."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

import ktorch


@pytest.fixture
def server():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers.get("Content-Type"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


def _fit(callback, epochs=2):
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 3), dtype=np.float32), rng.random((32, 1), dtype=np.float32)
    model = ktorch.Sequential([ktorch.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    return model.fit(x, y, epochs=epochs, verbose=0, callbacks=[callback])


def test_posts_json(server):
    root, received = server
    history = _fit(ktorch.callbacks.RemoteMonitor(root=root, send_as_json=True))
    assert [r[0] for r in received] == ["/publish/epoch/end/"] * 2
    assert all(r[1] == "application/json" for r in received)
    payloads = [json.loads(r[2]) for r in received]
    assert payloads == [
        {"epoch": 0, "loss": history.history["loss"][0]},
        {"epoch": 1, "loss": history.history["loss"][1]},
    ]


def test_posts_a_form_field(server):
    root, received = server
    history = _fit(
        ktorch.callbacks.RemoteMonitor(root=root, path="/events", field="payload"), epochs=1
    )
    (request,) = received
    assert request[0] == "/events"
    form = urllib.parse.parse_qs(request[2].decode())
    assert json.loads(form["payload"][0]) == {"epoch": 0, "loss": history.history["loss"][0]}


def test_unreachable_server_warns():
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor root server"):
        _fit(ktorch.callbacks.RemoteMonitor(root="http://127.0.0.1:9"), epochs=1)
