"""`TensorBoard`: writes training logs as TensorBoard event files."""

from __future__ import annotations

import os
import time
import warnings

from ktorch.callbacks.callback import Callback
from ktorch.trainers import distributed


class TensorBoard(Callback):
    """Writes losses, metrics, the learning rate and weight histograms for TensorBoard.

    Event files go to `log_dir/train` and `log_dir/validation`, with Keras's tags:
    `epoch_loss`, `epoch_<metric>`, `epoch_learning_rate` (step: the epoch index); with an
    integer `update_freq`, `batch_loss`, `batch_<metric>` (step: the batch count since the
    start of `fit`); after each evaluation, `evaluation_<metric>_vs_iterations` (step: the
    optimizer's iteration count). View them with `tensorboard --logdir log_dir`.

    Writing uses `torch.utils.tensorboard.SummaryWriter` (it needs the `tensorboard` package,
    imported on first write, and takes torch tensors as they are). Only the main process
    (rank 0) writes under `torchrun`.

    Args:
        log_dir: directory of the event files.
        histogram_freq: every how many epochs to write a histogram of every weight (tags
            `<weight path>/histogram`); 0 writes none.
        write_graph: write the model's architecture (its Keras JSON, shown by TensorBoard's
            graph dashboard as a conceptual graph) at the end of the first epoch. Only
            `Sequential` and functional models have one; for subclassed models a warning says
            that no graph was written.
        write_images: with `histogram_freq`, also write each weight as an image.
        write_steps_per_second: also write the training speed (`epoch_steps_per_second`, and
            `batch_steps_per_second` with an integer `update_freq`).
        update_freq: `"epoch"` writes once per epoch; `"batch"` or an integer `n` also writes
            the running batch values every `n` batches (reading them costs a host sync).
        profile_batch: must be 0: profiling is not available (use `torch.profiler` with
            `torch.profiler.tensorboard_trace_handler`).
        embeddings_freq: every how many epochs to write the `Embedding` layers' matrices for
            the projector; 0 writes none.
        embeddings_metadata: path of a metadata file (one label per row, or tab-separated
            columns under a header row) for all embeddings, or a dict mapping `Embedding`
            layer names to such paths.

    Example:
        ```python
        tensorboard = ktorch.callbacks.TensorBoard(log_dir="./logs", histogram_freq=1)
        model.fit(x, y, epochs=5, callbacks=[tensorboard])
        ```
    """

    def __init__(
        self,
        log_dir="logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq="epoch",
        profile_batch=0,
        embeddings_freq: int = 0,
        embeddings_metadata=None,
    ):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        if self.update_freq != "epoch" and (
            isinstance(self.update_freq, bool)
            or not isinstance(self.update_freq, int)
            or self.update_freq < 1
        ):
            raise ValueError(
                "Invalid value for argument update_freq. Expected 'epoch', 'batch' or a "
                f"positive integer. Received: update_freq={update_freq!r}"
            )
        if profile_batch not in (0, None, "", "0", (0, 0), [0, 0]):
            raise ValueError(
                "Profiling is not available in the TensorBoard callback: use "
                "`torch.profiler.profile` with `torch.profiler.tensorboard_trace_handler`. "
                f"Received: profile_batch={profile_batch!r} (must be 0)"
            )
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers: dict = {}
        self._global_train_batch = 0
        self._epoch_start_batch = 0
        self._last_written_batch = 0
        self._rate_mark = (0, 0.0)
        self._epoch_start_time = 0.0
        self._epoch_start_iterations = 0
        self._should_write_graph = False
        if self.update_freq != "epoch":
            # Set on the instance so that batch hooks (and per-batch logs, a host sync) are
            # only dispatched when batch-level values are written.
            self.on_batch_end = self._log_batch

    # ---------------------------------------------------------------- writers

    def _writer(self, kind: str):
        """The `SummaryWriter` of `log_dir/train` or `log_dir/validation`; None off rank 0."""
        if not distributed.is_main_process():
            return None
        if kind not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[kind] = SummaryWriter(
                self._train_dir if kind == "train" else self._val_dir
            )
        return self._writers[kind]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def set_model(self, model) -> None:
        self._close_writers()
        super().set_model(model)

    # ------------------------------------------------------------------ hooks

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._epoch_start_batch = 0
        self._last_written_batch = 0
        self._rate_mark = (0, time.monotonic())
        self._should_write_graph = bool(self.write_graph)
        if self.embeddings_freq:
            self._check_embeddings_metadata()

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start_batch = self._global_train_batch
        self._epoch_start_time = time.monotonic()
        self._epoch_start_iterations = self._iterations()

    def on_epoch_end(self, epoch, logs=None):
        steps = self.params.get("steps")
        if steps:
            self._global_train_batch = self._epoch_start_batch + steps
        if self._should_write_graph:
            self._should_write_graph = False
            self._write_model_graph()
        self._log_epoch_metrics(epoch, logs)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._log_embeddings(epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_test_end(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if not logs or optimizer is None or not hasattr(optimizer, "iterations"):
            return
        writer = self._writer("val")
        if writer is None:
            return
        step = int(optimizer.iterations)
        for name, value in logs.items():
            writer.add_scalar(f"evaluation_{name}_vs_iterations", value, step)
        writer.flush()

    def _log_batch(self, batch, logs=None):
        self._global_train_batch = self._epoch_start_batch + batch + 1
        step = self._global_train_batch
        if step // self.update_freq == self._last_written_batch // self.update_freq:
            return
        self._last_written_batch = step
        writer = self._writer("train")
        if writer is None:
            return
        if self.write_steps_per_second:
            last_step, last_time = self._rate_mark
            now = time.monotonic()
            if now > last_time:
                rate = (step - last_step) / (now - last_time)
                writer.add_scalar("batch_steps_per_second", rate, step)
            self._rate_mark = (step, now)
        # Reading the logs makes the running metric values host-side: one sync per write.
        for name, value in (logs or {}).items():
            writer.add_scalar(f"batch_{name}", value, step)

    # --------------------------------------------------------------- writing

    def _iterations(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        return int(getattr(optimizer, "iterations", 0) or 0)

    def _log_epoch_metrics(self, epoch: int, logs) -> None:
        if not logs:
            return
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "learning_rate"):
            train_logs["learning_rate"] = float(optimizer.learning_rate)
        if self.write_steps_per_second:
            elapsed = time.monotonic() - self._epoch_start_time
            done = self._iterations() - self._epoch_start_iterations
            train_logs["steps_per_second"] = done / elapsed if elapsed > 0 else 0.0
        for kind, values in (("train", train_logs), ("val", val_logs)):
            if not values:
                continue
            writer = self._writer(kind)
            if writer is None:
                return
            for name, value in values.items():
                writer.add_scalar(f"epoch_{name}", value, epoch)

    def _log_weights(self, epoch: int) -> None:
        writer = self._writer("train")
        if writer is None:
            return
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.path.replace(":", "_")
                writer.add_histogram(f"{name}/histogram", weight.detach(), epoch)
                if self.write_images:
                    self._log_weight_as_image(writer, weight.detach(), f"{name}/image", epoch)

    def _log_weight_as_image(self, writer, weight, tag: str, epoch: int) -> None:
        image = weight.squeeze()
        if image.ndim == 1:
            # A bias: one row.
            image = image.reshape(1, 1, -1, 1)
        elif image.ndim == 2:
            # A dense kernel: wider than tall.
            if image.shape[0] > image.shape[1]:
                image = image.T
            image = image.reshape(1, image.shape[0], image.shape[1], 1)
        elif image.ndim == 3:
            # A 1D/2D convolution kernel: one image per channel of the last axis.
            image = image.permute(2, 0, 1).unsqueeze(-1)
        else:
            return
        writer.add_images(tag, image.float().cpu(), epoch, dataformats="NHWC")

    def _write_model_graph(self) -> None:
        from ktorch.models.functional import Functional
        from ktorch.models.sequential import Sequential

        if not isinstance(self.model, (Functional, Sequential)):
            warnings.warn(
                f"TensorBoard: no graph written for model '{self.model.name}': only "
                "Sequential and functional models have an architecture to show. Pass "
                "`write_graph=False` to silence this warning.",
                stacklevel=2,
            )
            return
        try:
            architecture = self.model.to_json()
        except Exception as e:  # noqa: BLE001 - a model that cannot serialize still trains.
            warnings.warn(f"Model failed to serialize as JSON. Ignoring... {e}", stacklevel=2)
            return
        writer = self._writer("train")
        if writer is None:
            return
        writer._get_file_writer().add_summary(_keras_model_summary(architecture), 0)

    def _check_embeddings_metadata(self) -> None:
        metadata = self.embeddings_metadata
        if metadata is None or isinstance(metadata, (str, os.PathLike)):
            return
        names = {layer.name for layer in self._embedding_layers()}
        unknown = sorted(set(metadata) - names)
        if unknown:
            raise ValueError(
                "Unrecognized `Embedding` layer names passed to `ktorch.callbacks.TensorBoard` "
                f"`embeddings_metadata` argument: {unknown}. Embedding layers: {sorted(names)}"
            )

    def _embedding_layers(self) -> list:
        from ktorch.layers.core.embedding import Embedding

        return [layer for layer in self.model.layers if isinstance(layer, Embedding)]

    def _log_embeddings(self, epoch: int) -> None:
        writer = self._writer("train")
        if writer is None:
            return
        for layer in self._embedding_layers():
            path = self.embeddings_metadata
            if isinstance(path, dict):
                path = path.get(layer.name)
            labels, header = (None, None) if path is None else _read_metadata(path)
            matrix = layer.embeddings.detach()
            if labels is not None and len(labels) != matrix.shape[0]:
                raise ValueError(
                    f"The embeddings metadata file {path} has {len(labels)} rows but layer "
                    f"'{layer.name}' has {matrix.shape[0]} embeddings (argument "
                    "`embeddings_metadata` of TensorBoard)."
                )
            writer.add_embedding(
                matrix, metadata=labels, global_step=epoch, tag=layer.name, metadata_header=header
            )


def _read_metadata(path) -> tuple[list, list | None]:
    """Reads a projector metadata file: one label per line, or a header row and columns."""
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if rows and len(rows[0]) > 1:
        return rows[1:], rows[0]
    return [row[0] for row in rows], None


def _keras_model_summary(architecture: str):
    """A summary holding the model's JSON under the tag TensorBoard's graph dashboard reads."""
    from tensorboard.compat.proto import types_pb2
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

    metadata = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1")
    )
    tensor = TensorProto(
        dtype=types_pb2.DT_STRING,
        string_val=[architecture.encode("utf-8")],
        tensor_shape=TensorShapeProto(),
    )
    return Summary(value=[Summary.Value(tag="keras", metadata=metadata, tensor=tensor)])
