"""`SpatialDropout1D/2D/3D`: drop whole feature maps instead of single entries."""

from __future__ import annotations

from ktorch import config as ktorch_config
from ktorch.layers.input_spec import InputSpec
from ktorch.layers.regularization.dropout import Dropout, dropout


def _standardize_data_format(data_format) -> str:
    if data_format is None:
        return ktorch_config.image_data_format()
    value = str(data_format).lower()
    if value not in ("channels_first", "channels_last"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format}"
        )
    return value


class BaseSpatialDropout(Dropout):
    """Dropout with one draw per (sample, channel), shared over the spatial axes."""

    def __init__(self, rate: float, seed: int | None = None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)

    def _get_noise_shape(self, inputs):
        raise NotImplementedError

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return dropout(
                inputs,
                self.rate,
                noise_shape=self._get_noise_shape(inputs),
                generator=self.seed_generator.generator(inputs.device),
            )
        return inputs

    def get_config(self) -> dict:
        return {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}


class SpatialDropout1D(BaseSpatialDropout):
    """Spatial 1D dropout: drops entire channels of `(batch, timesteps, channels)` inputs.

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        seed: integer seed for reproducible masks, or None.

    Example:
        ```python
        y = SpatialDropout1D(0.5)(torch.ones(2, 5, 4), training=True)
        # y[i, :, c] is all 0. or all 2.
        ```
    """

    def __init__(self, rate: float, seed: int | None = None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.input_spec = InputSpec(ndim=3)

    def _get_noise_shape(self, inputs):
        return (inputs.shape[0], 1, inputs.shape[2])


class SpatialDropout2D(BaseSpatialDropout):
    """Spatial 2D dropout: drops entire 2D feature maps of 4D inputs.

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        data_format: `"channels_last"` (NHWC) or `"channels_first"` (NCHW); defaults to
            `ktorch.config.image_data_format()`.
        seed: integer seed for reproducible masks, or None.

    Example:
        ```python
        y = SpatialDropout2D(0.5)(torch.ones(2, 8, 8, 3), training=True)
        ```
    """

    def __init__(
        self,
        rate: float,
        data_format=None,
        seed: int | None = None,
        name=None,
        dtype=None,
        **kwargs,
    ):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = _standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=4)

    def _get_noise_shape(self, inputs):
        if self.data_format == "channels_first":
            return (inputs.shape[0], inputs.shape[1], 1, 1)
        return (inputs.shape[0], 1, 1, inputs.shape[3])

    def get_config(self) -> dict:
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class SpatialDropout3D(BaseSpatialDropout):
    """Spatial 3D dropout: drops entire 3D feature maps of 5D inputs.

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        data_format: `"channels_last"` (NDHWC) or `"channels_first"` (NCDHW); defaults to
            `ktorch.config.image_data_format()`.
        seed: integer seed for reproducible masks, or None.

    Example:
        ```python
        y = SpatialDropout3D(0.5)(torch.ones(2, 4, 4, 4, 3), training=True)
        ```
    """

    def __init__(
        self,
        rate: float,
        data_format=None,
        seed: int | None = None,
        name=None,
        dtype=None,
        **kwargs,
    ):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = _standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=5)

    def _get_noise_shape(self, inputs):
        if self.data_format == "channels_first":
            return (inputs.shape[0], inputs.shape[1], 1, 1, 1)
        return (inputs.shape[0], 1, 1, 1, inputs.shape[4])

    def get_config(self) -> dict:
        config = super().get_config()
        config["data_format"] = self.data_format
        return config
