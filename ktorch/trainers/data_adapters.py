"""Data adapters: turn what `fit`/`evaluate`/`predict` receive into batches of tensors.

`ArrayDataAdapter` handles NumPy arrays, torch tensors and nested lists/dicts of them;
`IterableDataAdapter` handles `DataLoader`s, Python generators and other iterables of batches.
Both can shard their data per process (`rank`, `world_size`) for data-parallel training.
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ktorch import config
from ktorch.utils import tree
from ktorch.utils.batch_utils import unpack_x_y_sample_weight
from ktorch.utils.io_utils import HDF5Matrix
from ktorch.utils.py_dataset import PyDataset


def to_tensor(value) -> Any:
    """Converts an array-like leaf to a torch tensor (no copy for NumPy/tensors of floatx)."""
    if value is None or torch.is_tensor(value):
        if torch.is_tensor(value) and value.dtype is torch.float64:
            return value.to(getattr(torch, config.floatx()))
        return value
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple)):
        value = np.asarray(value)
    array = np.asarray(value)
    if array.dtype == np.float64:
        array = array.astype(config.floatx())
    elif array.dtype == object:
        raise ValueError(f"Cannot convert an array of Python objects to a tensor: {value!r}")
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array).copy()
    return torch.from_numpy(array)


def is_lazy_array(v) -> bool:
    """Whether `v` is an on-disk array read batch by batch (`h5py.Dataset`, `HDF5Matrix`)."""
    return isinstance(v, HDF5Matrix) or (
        type(v).__module__.startswith("h5py") and type(v).__name__ == "Dataset"
    )


def _as_lazy(v):
    return HDF5Matrix.from_dataset(v) if is_lazy_array(v) and not isinstance(v, HDF5Matrix) else v


def _leaf_to_tensor(v):
    return _as_lazy(v) if is_lazy_array(v) else to_tensor(v)


def is_array_data(x) -> bool:
    leaves = tree.flatten(x)
    return bool(leaves) and all(
        isinstance(v, (np.ndarray, torch.Tensor)) or _is_number_list(v) or is_lazy_array(v)
        for v in leaves
    )


def _is_number_list(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num_samples(structure) -> int:
    sizes = {int(v.shape[0]) for v in tree.flatten(structure) if v is not None}
    if len(sizes) > 1:
        raise ValueError(
            "Data cardinality is ambiguous. Make sure all arrays contain the same number of "
            f"samples. Received sizes: {sorted(sizes)}"
        )
    return sizes.pop() if sizes else 0


def _class_weights_to_sample_weights(y, class_weight: dict) -> torch.Tensor:
    if isinstance(y, (list, tuple, dict)):
        raise ValueError("`class_weight` is only supported for models with a single output.")
    labels = y
    if labels.ndim > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(dim=-1)
    elif labels.ndim > 1:
        labels = labels.reshape(labels.shape[0], -1)[:, 0]
        if labels.is_floating_point():
            labels = labels.round()
    labels = labels.long()
    max_class = int(labels.max()) if labels.numel() else 0
    table = torch.ones(max(max_class + 1, max(class_weight) + 1), dtype=torch.float32)
    for key, weight in class_weight.items():
        table[int(key)] = float(weight)
    return table[labels]


class ArrayDataAdapter:
    """Batches in-memory arrays.

    Args:
        x, y, sample_weight: arrays/tensors or nested lists/dicts of them.
        batch_size: samples per batch (32 when None).
        steps: batches per epoch (None: one pass over the data).
        shuffle: True (global reshuffle each epoch), "batch" (shuffle batch order only) or False.
        class_weight: dict class index -> weight, folded into the sample weights.
        rank, world_size: this process's shard of every epoch.
    """

    def __init__(
        self,
        x,
        y=None,
        sample_weight=None,
        batch_size=None,
        steps=None,
        shuffle=False,
        class_weight=None,
        rank=0,
        world_size=1,
    ):
        # h5py datasets and HDF5Matrix stay on disk: batches are read from them on demand.
        self.x = tree.map_structure(_leaf_to_tensor, x)
        self.y = tree.map_structure(_leaf_to_tensor, y) if y is not None else None
        sw = (
            tree.map_structure(_leaf_to_tensor, sample_weight)
            if sample_weight is not None
            else None
        )
        self.num_samples = _num_samples((self.x, self.y, sw))
        if class_weight:
            labels = self.y
            if is_lazy_array(labels):
                # Labels are small next to the features: read them once to weight classes.
                labels = to_tensor(np.asarray(labels))
            cw = _class_weights_to_sample_weights(labels, class_weight)
            sw = (
                cw
                if sw is None
                else (sw * cw if torch.is_tensor(sw) else to_tensor(np.asarray(sw)) * cw)
            )
        self.sample_weight = sw
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(
                f"Argument `batch_size` must be a positive integer. Received: {batch_size!r}"
            )
        self.batch_size = batch_size or 32
        if shuffle not in (True, False, "batch"):
            raise ValueError(
                f"Argument `shuffle` must be True, False or 'batch'. Received: {shuffle!r}"
            )
        self.shuffle = shuffle
        self.steps = steps
        self.rank, self.world_size = rank, world_size
        self._epoch_batches = math.ceil(self._shard_size() / self.batch_size)
        self._cursor = None

    def _shard_size(self) -> int:
        return len(range(self.rank, self.num_samples, self.world_size))

    @property
    def num_batches(self) -> int | None:
        return self.steps if self.steps is not None else self._epoch_batches

    def _take(self, index):
        """Returns the batch at `index` (a slice or an index tensor)."""
        if isinstance(index, slice):

            def pick(v):
                if v is None:
                    return None
                return to_tensor(v[index]) if isinstance(v, HDF5Matrix) else v[index]
        else:

            def pick(v):
                if v is None:
                    return None
                if isinstance(v, HDF5Matrix):
                    return to_tensor(v[index.numpy()])
                return v.index_select(0, index)

        return (
            tree.map_structure(pick, self.x),
            tree.map_structure(pick, self.y) if self.y is not None else None,
            tree.map_structure(pick, self.sample_weight)
            if self.sample_weight is not None
            else None,
        )

    def _epoch_indices(self):
        n, b = self.num_samples, self.batch_size
        if self.shuffle is True:
            order = torch.randperm(n)
            if self.world_size > 1:
                order = order[self.rank :: self.world_size]
            return [order[i : i + b] for i in range(0, len(order), b)]
        if self.world_size > 1:
            order = torch.arange(self.rank, n, self.world_size)
            batches = [order[i : i + b] for i in range(0, len(order), b)]
        else:
            # Contiguous slices are views: no copy for unshuffled batches.
            batches = [slice(i, min(i + b, n)) for i in range(0, n, b)]
        if self.shuffle == "batch":
            perm = torch.randperm(len(batches)).tolist()
            batches = [batches[i] for i in perm]
        return batches

    def __iter__(self) -> Iterator:
        if self.steps is None:
            for index in self._epoch_indices():
                yield self._take(index)
            return
        # With steps_per_epoch, epochs continue where the previous one stopped.
        for _ in range(self.steps):
            if not self._cursor:
                self._cursor = list(self._epoch_indices())
            yield self._take(self._cursor.pop(0))


class IterableDataAdapter:
    """Batches from an iterable: a `DataLoader`, a generator, a `Dataset` or any iterable.

    A `DataLoader` or re-iterable object is iterated afresh each epoch (used as given);
    a one-shot iterator (generator) is drawn from continuously, `steps` batches per epoch.
    """

    def __init__(self, data, steps=None, class_weight=None):
        self.data = data
        self.steps = steps
        self.class_weight = class_weight
        self._one_shot = iter(data) is data
        self._iterator = None
        self._known_batches = None
        try:
            self._known_batches = len(data)
        except TypeError:
            pass

    @property
    def num_batches(self) -> int | None:
        return self.steps if self.steps is not None else self._known_batches

    def __iter__(self) -> Iterator:
        if self._one_shot:
            if self._iterator is None:
                self._iterator = self.data
            source = self._iterator
        else:
            source = iter(self.data)
        count = 0
        source = iter(source)
        while True:
            try:
                batch = next(source)
            except StopIteration:
                return
            except Exception as error:
                raise _source_error(self.data, count, error) from error
            yield _batch_to_tensors(batch, self.class_weight)
            count += 1
            if self.steps is not None and count >= self.steps:
                return


def _batch_to_tensors(batch, class_weight=None) -> tuple:
    x, y, sw = unpack_x_y_sample_weight(batch)
    x = tree.map_structure(to_tensor, x)
    y = tree.map_structure(to_tensor, y) if y is not None else None
    sw = tree.map_structure(to_tensor, sw) if sw is not None else None
    if class_weight:
        if y is None:
            raise ValueError("`class_weight` needs targets: the data yields no `y`.")
        cw = _class_weights_to_sample_weights(y, class_weight)
        sw = cw if sw is None else sw * cw
    return x, y, sw


def _source_error(source, index: int, error: Exception) -> RuntimeError:
    return RuntimeError(
        f"The data source ({type(source).__name__}) raised {type(error).__name__} while "
        f"producing batch {index}: {error}"
    )


class PyDatasetAdapter:
    """Batches from a `PyDataset`/`Sequence`, prepared by its workers (threads or processes).

    Every epoch visits the batches once (in a new random order with `shuffle=True`) and then
    calls the dataset's `on_epoch_end()`.
    """

    def __init__(self, dataset: PyDataset, shuffle=False, steps=None, class_weight=None):
        self.dataset = dataset
        self.class_weight = class_weight
        self.shuffle = shuffle is True or shuffle == "batch"
        self.steps = steps
        self._known = dataset.num_batches if hasattr(dataset, "num_batches") else len(dataset)

    @property
    def num_batches(self) -> int | None:
        return self.steps if self.steps is not None else self._known

    def _order(self) -> list[int]:
        if self._known is None:
            raise ValueError(
                f"{type(self.dataset).__name__} has no length: pass `steps_per_epoch` (fit) or "
                "`steps` (evaluate/predict)."
            )
        if self.shuffle:
            return torch.randperm(self._known).tolist()
        return list(range(self._known))

    def _fetch(self, order: list[int]) -> Iterator:
        dataset = self.dataset
        workers = dataset.workers
        if workers > 1 and dataset.use_multiprocessing:
            loader = torch.utils.data.DataLoader(
                _IndexedBatches(dataset),
                batch_size=None,
                sampler=order,
                num_workers=workers,
                prefetch_factor=max(1, dataset.max_queue_size // workers),
            )
            yield from zip(order, loader, strict=True)
            return
        if workers > 1:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                pending: collections.deque = collections.deque()
                position = 0
                while position < len(order) or pending:
                    while position < len(order) and len(pending) < dataset.max_queue_size:
                        index = order[position]
                        pending.append((index, pool.submit(dataset.__getitem__, index)))
                        position += 1
                    index, future = pending.popleft()
                    yield index, future.result()
            return
        for index in order:
            yield index, dataset[index]

    def __iter__(self) -> Iterator:
        self.dataset.on_epoch_begin()
        order = self._order()
        if self.steps is not None:
            order = (order * (self.steps // max(len(order), 1) + 1))[: self.steps]
        batches = self._fetch(order)
        while True:
            try:
                index, batch = next(batches)
            except StopIteration:
                break
            except Exception as error:
                raise RuntimeError(
                    f"{type(self.dataset).__name__} raised {type(error).__name__} while "
                    f"producing a batch: {error}"
                ) from error
            yield _batch_to_tensors(batch, self.class_weight)
        self.dataset.on_epoch_end()


class _IndexedBatches(torch.utils.data.Dataset):
    """A PyDataset seen by a DataLoader: item `i` is batch `i`."""

    def __init__(self, dataset: PyDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index]


class ShuffleBuffer(torch.utils.data.IterableDataset):
    """Shuffles a stream of samples through a buffer of `buffer_size` samples.

    The random order comes from a generator seeded from torch's global RNG at the start of each
    pass, so `set_random_seed` makes it reproducible.
    """

    def __init__(self, dataset, buffer_size: int):
        self.dataset = dataset
        self.buffer_size = buffer_size

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(int(torch.randint(0, 2**62, (), dtype=torch.int64)))
        buffer = []
        for sample in self.dataset:
            if len(buffer) < self.buffer_size:
                buffer.append(sample)
                continue
            i = int(torch.randint(0, self.buffer_size, (), generator=generator))
            buffer[i], sample = sample, buffer[i]
            yield sample
        while buffer:
            i = int(torch.randint(0, len(buffer), (), generator=generator))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()


SHUFFLE_BUFFER_SIZE = 1024


def get_data_adapter(
    x,
    y=None,
    sample_weight=None,
    batch_size=None,
    steps=None,
    shuffle=False,
    class_weight=None,
    rank=0,
    world_size=1,
):
    """Picks the adapter for `x` (arrays/tensors, or an iterable of batches)."""
    if x is None:
        raise ValueError("No input data was given: pass `x` (and `y` for supervised training).")
    if is_array_data(x):
        return ArrayDataAdapter(
            x, y, sample_weight, batch_size, steps, shuffle, class_weight, rank, world_size
        )
    if y is not None or sample_weight is not None:
        raise ValueError(
            "When `x` is a dataset, generator or DataLoader, it must yield `(x, y)` or "
            "`(x, y, sample_weight)` itself: do not pass `y` or `sample_weight` separately. "
            f"Received: x={type(x).__name__}, y={type(y).__name__}"
        )
    if isinstance(x, PyDataset):
        return PyDatasetAdapter(x, shuffle, steps, class_weight)
    if isinstance(x, torch.utils.data.IterableDataset):
        # Samples from a stream: shuffled through a bounded buffer, then batched.
        if shuffle:
            x = ShuffleBuffer(x, SHUFFLE_BUFFER_SIZE)
        x = torch.utils.data.DataLoader(x, batch_size=batch_size or 32)
    elif isinstance(x, torch.utils.data.Dataset):
        x = torch.utils.data.DataLoader(x, batch_size=batch_size or 32, shuffle=bool(shuffle))
    if not hasattr(x, "__iter__"):
        raise ValueError(
            "Unrecognized data type: expected NumPy arrays, torch tensors, lists/dicts of them, "
            f"a DataLoader, a Dataset or a generator. Received: x={type(x).__name__}"
        )
    return IterableDataAdapter(x, steps, class_weight)


def train_validation_split(arrays, validation_split: float):
    """Splits nested arrays: the last `validation_split` fraction becomes validation data."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(
            "Argument `validation_split` must be a float in (0, 1). "
            f"Received: validation_split={validation_split}"
        )
    arrays = tree.map_structure(_as_lazy, arrays)
    flat = [v for v in tree.flatten(arrays) if v is not None]
    if not all(isinstance(v, (np.ndarray, torch.Tensor, HDF5Matrix)) for v in flat):
        raise ValueError(
            "`validation_split` is only supported for NumPy arrays and torch tensors; with "
            "datasets, generators or DataLoaders, pass `validation_data` instead. Received: "
            f"{sorted({type(v).__name__ for v in flat})}"
        )
    n = int(flat[0].shape[0])
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"Training data contains {n} samples, which is not sufficient to split it into a "
            f"validation and training set as specified by `validation_split={validation_split}`."
        )

    def first(v):
        if v is None:
            return None
        return v.view(0, split_at) if isinstance(v, HDF5Matrix) else v[:split_at]

    def last(v):
        if v is None:
            return None
        return v.view(split_at, n) if isinstance(v, HDF5Matrix) else v[split_at:]

    return tree.map_structure(first, arrays), tree.map_structure(last, arrays)
