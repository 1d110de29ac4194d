"""Argument checks, Keras output-size rules and layout permutations shared by the image layers.

Keras's `padding="same"` is TensorFlow's: the total padding of a dimension is split with the
extra cell at the end when it is odd. The helpers here compute those (left, right) amounts and
the permutations that turn a channels_last tensor into a channels_first view and back.
"""

from __future__ import annotations


def standardize_tuple(value, n: int, name: str, allow_zero: bool = False) -> tuple[int, ...]:
    """Turns an int or an iterable of ints into a tuple of `n` positive (or >= 0) ints.

    Args:
        value: an int, or an iterable of `n` ints.
        n: length of the returned tuple.
        name: the argument's name, for error messages.
        allow_zero: accept zeros (else every value must be > 0).

    Returns:
        A tuple of `n` ints.
    """
    message = f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value}"
    if isinstance(value, int) and not isinstance(value, bool):
        values = (value,) * n
    else:
        try:
            values = tuple(value)
        except TypeError as error:
            raise ValueError(message) from error
        if len(values) != n:
            raise ValueError(message)
        for item in values:
            if isinstance(item, bool) or not isinstance(item, int) and int(item) != item:
                raise ValueError(f"{message}, including element {item} of type {type(item)}")
        values = tuple(int(v) for v in values)
    bad = {v for v in values if (v < 0 if allow_zero else v <= 0)}
    if bad:
        required = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{message}, including values {bad} that do not satisfy `value {required}`"
        )
    return values


def standardize_padding(value: str, allow_causal: bool = False) -> str:
    """Validates and lower-cases a `padding` argument (`"valid"`, `"same"`, maybe `"causal"`).

    Args:
        value: the padding string.
        allow_causal: whether `"causal"` is accepted.

    Returns:
        The lower-cased padding.
    """
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ValueError(
            f"Invalid value for argument `padding`. Expected one of {allowed}. "
            f"Received: padding={value!r}"
        )
    return padding


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """The (left, right) padding of one dimension for Keras's `padding="same"`.

    Args:
        size: input length along the dimension.
        kernel: kernel (or pool) size.
        stride: stride.
        dilation: dilation rate.

    Returns:
        `(left, right)`, with `right - left` equal to 0 or 1.
    """
    effective = (kernel - 1) * dilation + 1
    if stride == 1:
        total = effective - 1
    else:
        total = max(0, (-(-size // stride) - 1) * stride + effective - size)
    return total // 2, total - total // 2


def conv_output_length(size, kernel: int, stride: int, padding: str, dilation: int = 1):
    """Output length of a convolution or pooling along one dimension (None stays None).

    Args:
        size: input length, or None when unknown.
        kernel: kernel (or pool) size.
        stride: stride.
        padding: `"valid"`, `"same"` or `"causal"`.
        dilation: dilation rate.

    Returns:
        The output length, or None.
    """
    if size is None:
        return None
    if padding == "valid":
        return (size - (kernel - 1) * dilation - 1) // stride + 1
    return (size - 1) // stride + 1


def conv_transpose_output_length(
    size, kernel: int, stride: int, padding: str, output_padding, dilation: int = 1
):
    """Output length of a transposed convolution along one dimension, as Keras computes it.

    Args:
        size: input length, or None when unknown.
        kernel: kernel size.
        stride: stride.
        padding: `"valid"` or `"same"`.
        output_padding: extra cells at the end, or None for Keras's default.
        dilation: dilation rate.

    Returns:
        The output length, or None.
    """
    if size is None:
        return None
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(effective, stride) - effective if output_padding is None else output_padding
        return (size - 1) * stride + effective + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + effective % 2 + output_padding


def conv_transpose_crops(
    kernel: int, stride: int, padding: str, output_padding, dilation: int = 1
) -> tuple[int, int]:
    """Cells to drop at the (start, end) of the full transposed-convolution output.

    The full output (no padding) has length `(size - 1) * stride + effective_kernel`; Keras's
    result is that window cropped by these amounts. A negative end crop means zeros appended.

    Args:
        kernel: kernel size.
        stride: stride.
        padding: `"valid"` or `"same"`.
        output_padding: extra cells at the end, or None for Keras's default.
        dilation: dilation rate.

    Returns:
        `(crop_start, crop_end)`.
    """
    effective = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(effective, stride) - effective if output_padding is None else output_padding
        left, right = effective - 1, effective - 1 + extra
    else:
        if output_padding is None:
            total = stride + effective - 2
        else:
            total = effective + effective % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, effective - 1)
        right = total - left
    return effective - 1 - left, effective - 1 - right


def flat_pad(pads) -> tuple[int, ...]:
    """`F.pad`'s argument (last dimension first) from per-dimension `(left, right)` pairs."""
    flat = []
    for left, right in reversed(pads):
        flat.extend((left, right))
    return tuple(flat)


def spatial_axes(data_format: str, rank: int) -> tuple[int, ...]:
    """Indices of the spatial axes of a `rank`-D input (batch axis included in the count)."""
    start = 1 if data_format == "channels_last" else 2
    return tuple(range(start, start + rank))


def to_channels_first(ndim: int) -> tuple[int, ...]:
    """Permutation taking `(N, *spatial, C)` to `(N, C, *spatial)`."""
    return (0, ndim - 1, *range(1, ndim - 1))


def to_channels_last(ndim: int) -> tuple[int, ...]:
    """Permutation taking `(N, C, *spatial)` to `(N, *spatial, C)`."""
    return (0, *range(2, ndim), 1)


def kernel_to_torch(rank: int) -> tuple[int, ...]:
    """Permutation taking a Keras kernel `(*spatial, a, b)` to torch's `(b, a, *spatial)`."""
    return (rank + 1, rank, *range(rank))


class TorchLayout:
    """How a layer's input reaches torch's channels_first ops and how the result comes back.

    channels_first inputs go as they are. channels_last inputs are permuted to a channels_first
    view whose memory is torch's channels_last format, so neither way copies. A 1D
    channels_last input `(N, L, C)` is viewed as an image of height 1, `(N, C, 1, L)` (torch
    has no channels_last format for 3D tensors), and its result comes back contiguous as well.

    Args:
        data_format: `"channels_last"` or `"channels_first"`.
        rank: number of spatial axes of the layer's input.
    """

    def __init__(self, data_format: str, rank: int):
        self.channels_last = data_format == "channels_last"
        self.lifted = self.channels_last and rank == 1
        self.rank = rank + 1 if self.lifted else rank
        self._to_first = to_channels_first(self.rank + 2)
        self._to_last = to_channels_last(self.rank + 2)

    def spatial(self, values, unit: int) -> tuple:
        """Per-axis arguments of the torch op: `unit` first for the added axis when lifted."""
        return (unit, *values) if self.lifted else tuple(values)

    def to_torch(self, x):
        """The input as a channels_first tensor of rank `self.rank + 2` (a view)."""
        if not self.channels_last:
            return x
        if self.lifted:
            x = x.unsqueeze(1)
        return x.permute(self._to_first)

    def from_torch(self, y):
        """The torch op's channels_first result in the layer's data format (a view)."""
        if not self.channels_last:
            return y
        y = y.permute(self._to_last)
        return y.squeeze(1) if self.lifted else y

    def kernel(self, kernel):
        """A torch-layout kernel `(out, in, *k)` with the added unit axis when lifted."""
        return kernel.unsqueeze(2) if self.lifted else kernel
