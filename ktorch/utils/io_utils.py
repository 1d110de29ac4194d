"""`HDF5Matrix`: an HDF5 dataset used as an array, read lazily, slice by slice."""

from __future__ import annotations

import os

import numpy as np


class HDF5Matrix:
    """A row range of an HDF5 dataset, usable wherever arrays are (`fit`, `predict`, ...).

    Nothing is read when the matrix is made: indexing reads only the rows asked for, so `fit`
    streams data larger than memory batch by batch. With `shuffle="batch"`, `fit` reads
    contiguous batches in shuffled order (the fast access pattern for HDF5); with
    `shuffle=True`, each batch is a sorted random selection of rows.

    Args:
        datapath: path of the HDF5 file (opened read-only and kept open).
        dataset: name of the dataset inside the file.
        start: first row of the range.
        end: one past the last row (default: the end of the dataset).
        normalizer: a function applied to every block of rows read.

    Example:
        ```python
        x = ktorch.utils.HDF5Matrix("data.h5", "features", end=50_000)
        y = ktorch.utils.HDF5Matrix("data.h5", "labels", end=50_000)
        model.fit(x, y, batch_size=256, shuffle="batch")
        ```
    """

    _files: dict[str, object] = {}

    def __init__(
        self, datapath, dataset: str, start: int = 0, end: int | None = None, normalizer=None
    ):
        import h5py

        datapath = os.fspath(datapath)
        handle = HDF5Matrix._files.get(datapath)
        if handle is None or not handle.id.valid:
            handle = h5py.File(datapath, "r")
            HDF5Matrix._files[datapath] = handle
        if dataset not in handle:
            raise ValueError(f"No dataset named {dataset!r} in the HDF5 file {datapath}.")
        self.data = handle[dataset]
        self._set_range(start, end)
        self.normalizer = normalizer

    @classmethod
    def from_dataset(cls, data, start: int = 0, end: int | None = None, normalizer=None):
        """Wraps an open `h5py.Dataset` (or any array-like with `shape`) without reading it."""
        matrix = cls.__new__(cls)
        matrix.data = data
        matrix._set_range(start, end)
        matrix.normalizer = normalizer
        return matrix

    def _set_range(self, start: int, end: int | None) -> None:
        total = int(self.data.shape[0])
        end = total if end is None else end
        if not 0 <= start <= end <= total:
            raise ValueError(
                f"Invalid row range for HDF5Matrix: expected 0 <= start <= end <= {total}. "
                f"Received: start={start}, end={end}"
            )
        self.start, self.end = int(start), int(end)

    def view(self, start: int = 0, end: int | None = None) -> HDF5Matrix:
        """The rows `start:end` of this matrix, as a new lazy matrix."""
        length = len(self)
        end = length if end is None else end
        if not 0 <= start <= end <= length:
            raise ValueError(
                f"Invalid range for HDF5Matrix.view: expected 0 <= start <= end <= {length}. "
                f"Received: start={start}, end={end}"
            )
        return HDF5Matrix.from_dataset(
            self.data, self.start + start, self.start + end, self.normalizer
        )

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def shape(self) -> tuple:
        return (len(self), *self.data.shape[1:])

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, key):
        length = len(self)
        if isinstance(key, slice):
            start, stop, step = key.indices(length)
            if step == 1:
                rows = self.data[self.start + start : self.start + max(start, stop)]
            else:
                rows = self.data[self.start + start : self.start + stop : step]
        elif isinstance(key, (int, np.integer)):
            index = int(key) + length if key < 0 else int(key)
            if not 0 <= index < length:
                raise IndexError(f"Index {key} is out of range for an HDF5Matrix of {length} rows.")
            rows = self.data[self.start + index]
        else:
            indices = np.asarray(key, dtype=np.int64).reshape(-1)
            if indices.size and (indices.min() < -length or indices.max() >= length):
                raise IndexError(f"Indices out of range for an HDF5Matrix of {length} rows.")
            indices = np.where(indices < 0, indices + length, indices)
            # HDF5 reads need increasing, unique indices: read sorted, then restore the order.
            unique, inverse = np.unique(indices, return_inverse=True)
            rows = self.data[(unique + self.start).tolist()][inverse]
        return self.normalizer(rows) if self.normalizer is not None else rows

    def __array__(self, dtype=None, copy=None):
        rows = self[:]
        return np.asarray(rows, dtype=dtype)

    def __repr__(self) -> str:
        return f"HDF5Matrix(rows {self.start}:{self.end}, shape={self.shape}, dtype={self.dtype})"
