"""`PyDataset` (Keras 2's `Sequence`): a dataset of whole batches, indexed, with workers."""

from __future__ import annotations


class PyDataset:
    """Base class for a dataset of batches: `__getitem__(index)` returns batch `index`.

    Subclass it, implement `__len__` (the number of batches) and `__getitem__` (returning
    `x`, `(x, y)` or `(x, y, sample_weight)` of one batch), and pass an instance to
    `fit`/`evaluate`/`predict`. Batches can be prepared in parallel: `workers` threads, or
    `workers` processes with `use_multiprocessing=True` (through a torch `DataLoader`, so the
    dataset must be picklable when processes are spawned rather than forked). `fit` with
    `shuffle=True` visits the batches in a new random order every epoch.

    Args:
        workers: number of threads or processes preparing batches (1: in the training loop).
        use_multiprocessing: use processes instead of threads.
        max_queue_size: batches prepared ahead of the training loop.

    Example:
        ```python
        class Batches(ktorch.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, index):
                s = slice(index * self.batch_size, (index + 1) * self.batch_size)
                return self.x[s], self.y[s]
        ```
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise ValueError(
                f"Invalid value for argument workers. Expected a non-negative integer. "
                f"Received: workers={workers!r}"
            )
        if not isinstance(max_queue_size, int) or max_queue_size < 1:
            raise ValueError(
                "Invalid value for argument max_queue_size. Expected a positive integer. "
                f"Received: max_queue_size={max_queue_size!r}"
            )
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    # Subclasses written for Keras 2's Sequence often skip super().__init__(): defaults then.
    @property
    def workers(self) -> int:
        return self.__dict__.get("_workers", 1)

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        return self.__dict__.get("_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        return self.__dict__.get("_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index):
        raise NotImplementedError(
            f"{type(self).__name__} must implement `__getitem__(index)` returning one batch."
        )

    def __len__(self) -> int:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `__len__()` returning the number of batches."
        )

    @property
    def num_batches(self) -> int | None:
        """The number of batches (`len(self)`), or None for an endless dataset."""
        try:
            return len(self)
        except NotImplementedError:
            return None

    def on_epoch_begin(self) -> None:
        """Called at the start of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch (e.g. to reshuffle the data)."""


Sequence = PyDataset
