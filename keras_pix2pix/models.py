"""The paper's networks as Keras functional models of stock layers: a U-Net generator and a PatchGAN.

Both follow the appendix of Isola et al. (2017) and junyanz's reference code: 4x4 convolutions
with stride 2, weights drawn from N(0, 0.02), BatchNorm scales from N(1, 0.02), LeakyReLU(0.2)
in the encoder and discriminator, ReLU in the decoder.

Convolutions followed by a normalization have no bias, as in junyanz's code: the mean is
subtracted right after, and Adam amplifies the rounding noise of its zero gradient into updates.
The discriminator's first convolution and the output layers keep theirs.

Only stock keras.layers appear here, so a saved generator loads with keras.models.load_model in a
process that never imports keras_pix2pix. The faster forms of the same functions that training
and the TFLite files use are made from these models by keras_pix2pix.fast.
"""

import dataclasses
import math

import keras

from keras_pix2pix.config import UsageError, parse_size
from keras_pix2pix.options import check_setting


def _weights():
    # A new initializer per layer: one shared unseeded initializer could repeat its values.
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _normalization(x, norm, name, dtype=None, synchronized=False):
    if norm == "batch":
        # momentum and epsilon as PyTorch's defaults, which the paper's code used.
        return keras.layers.BatchNormalization(
            momentum=0.9,
            epsilon=1e-5,
            gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
            name=f"{name}_batchnorm",
            dtype=dtype,
            # Under a tf.distribute strategy: statistics of the global batch, not of each replica's share.
            synchronized=synchronized,
        )(x)
    if norm == "instance":
        # Instance norm is group norm with one group per channel; no affine part, as junyanz.
        return keras.layers.GroupNormalization(
            groups=-1, epsilon=1e-5, center=False, scale=False, name=f"{name}_instancenorm", dtype=dtype
        )(x)
    return x


def _leaky_relu(x, name, dtype=None):
    return keras.layers.LeakyReLU(negative_slope=0.2, name=f"{name}_leakyrelu", dtype=dtype)(x)


def _down_block(x, filters, norm, name, dtype=None, synchronized=False, use_bias=False, activation=True):
    """LeakyReLU(0.2) - Conv(4x4, stride 2) - norm: halves the height and width.

    The activation opens the block, as in the paper's code (e2 = e1 - LeakyReLU - Conv - BN), so
    that the block's output, before any activation, is what the skip carries to the decoder; the
    first block (on the image itself) has none.
    """
    if activation:
        # Convolutions have biases only in a model without normalization: then the previous
        # block ends in one.
        x = _leaky_relu(x, name, dtype)
    x = keras.layers.Conv2D(
        filters,
        4,
        strides=2,
        padding="same",
        kernel_initializer=_weights(),
        use_bias=use_bias,
        name=f"{name}_conv",
        dtype=dtype,
    )(x)
    return _normalization(x, norm, name, dtype, synchronized)


def _upsampling(x, filters, upsample, name, dtype=None, use_bias=False):
    """Doubles the height and width: ConvTranspose(4x4, stride 2), or a bilinear resize then Conv(3x3).

    "resize" is the fix for checkerboard artifacts that the authors point to (Odena et al., 2016,
    "Deconvolution and Checkerboard Artifacts"): every output pixel gets the same number of
    contributions. It also leaves no transposed convolution for quantizers and GPU delegates.
    """
    if upsample == "transpose":
        return keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", kernel_initializer=_weights(),
                                            use_bias=use_bias, name=f"{name}_convtranspose", dtype=dtype)(x)
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample", dtype=dtype)(x)
    return keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=_weights(), use_bias=use_bias,
                               name=f"{name}_conv", dtype=dtype)(x)


@dataclasses.dataclass(frozen=True)
class _DecoderBlocks:
    """What every decoder block of one generator shares: its normalization, layer dtype and decoder kind."""

    norm: str
    dtype: object = None
    synchronized: bool = False
    use_bias: bool = False
    upsample: str = "transpose"

    def up(self, x, filters, dropout, name):
        """ReLU - ConvTranspose(4x4, stride 2) (or resize - Conv) - norm - Dropout: doubles the height and width.

        The ReLU opens the block, as in the paper's code (d2_ = d1 - ReLU - FullConv - BN - Dropout):
        it acts on the whole decoder input, the previous block's output and the skip features alike.
        """
        x = keras.layers.ReLU(name=f"{name}_relu", dtype=self.dtype)(x)
        x = _upsampling(x, filters, self.upsample, name, self.dtype, self.use_bias)
        x = _normalization(x, self.norm, name, self.dtype, self.synchronized)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{name}_dropout", dtype=self.dtype)(x)
        return x


def _output_head(x, output_channels, dtype, upsample="transpose"):
    """ReLU - ConvTranspose (or resize - Conv; with a bias) - tanh: the U-Net's last up block, to the image."""
    x = keras.layers.ReLU(name="output_relu", dtype=dtype)(x)
    x = _upsampling(x, output_channels, upsample, "output", dtype, use_bias=True)
    # tanh in float32 so that mixed precision never saturates the output range.
    return keras.layers.Activation("tanh", dtype="float32", name="output_tanh")(x)


def default_depth(image_size):
    """Downsamplings that bring the shorter side to 1: 256 -> 8, 128 -> 7, 512 -> 9."""
    return int(math.floor(math.log2(min(image_size))))


def _unet_size(image_size, depth):
    """(height, width, depth) of a U-Net: depth None brings the shorter side to 1; each side a multiple of 2**depth."""
    height, width = parse_size(image_size)
    if depth is None:
        if min(height, width) < 2:
            raise UsageError(f"image_size must be at least 2 on each side (a U-Net halves it); got {height}x{width}")
        depth = default_depth((height, width))
    multiple = 2**depth
    if height % multiple or width % multiple:
        raise UsageError(
            f"image_size must be a multiple of 2**depth = {multiple} on each side "
            f"(depth {depth}); got {height}x{width}"
        )
    return height, width, depth


# The builders' arguments that are one network's setting in Config: filters is generator_filters or discriminator_filters.
_NETWORK_SETTINGS = ("biases", "filters", "layers")


def _check_arguments(network, channels, **arguments):
    """Checks a builder's arguments against their settings' declarations (config.Config): fit's bounds.

    A builder's argument and fit's setting are one setting with one validator: a network that
    builds here can be trained, and a refusal reads the same whichever is called.

    Args:
        network: "generator" or "discriminator", whose settings the arguments are.
        channels: (input_channels, output_channels): any positive counts, not only Config's 1 or 3
            (an imported generator may have others).
        arguments: the other arguments, by their names in the builder.
    """
    for argument, value in zip(("input_channels", "output_channels"), channels):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{argument} must be a positive integer; got {value!r}")
    for argument, value in arguments.items():
        check_setting(f"{network}_{argument}" if argument in _NETWORK_SETTINGS else argument, value, argument)


def build_generator(
    *,
    image_size=(256, 256),
    input_channels=3,
    output_channels=3,
    depth=None,
    filters=64,
    norm="batch",
    dropout=0.5,
    skips=True,
    dtype=None,
    synchronized_batchnorm=False,
    biases="normless",
    dropout_placement="paper",
    upsample="transpose",
    name="generator",
):
    """The U-Net generator of the paper (or, with skips=False, its encoder-decoder baseline).

    The authors' network exactly (the paper's Torch code and junyanz's UnetSkipConnectionBlock):
    encoder blocks C64-C128-C256-C512-C512-..., each LeakyReLU(0.2) - Conv - BatchNorm, with no
    activation or normalization on the first block and no normalization on the innermost one (at
    batch size 1 a BatchNorm over a 1x1 map outputs a constant and the bottleneck would carry
    nothing). Decoder blocks mirror them, each ReLU - ConvTranspose - BatchNorm - Dropout; each
    one's output is concatenated after the encoder block of the same size. The head is ReLU -
    ConvTranspose - tanh. Trainable parameters at 256x256: 54,413,955 (junyanz's count).

    Args:
        image_size: int or (height, width); each a multiple of 2**depth.
        input_channels: channels of the input image.
        output_channels: channels of the generated image.
        depth: number of downsamplings; None brings the shorter side to 1 (256 -> 8).
        filters: filters of the first encoder block; doubled per block up to 8 * filters.
        norm: "batch", "instance" or "none".
        dropout: dropout rate of the decoder blocks dropout_placement names; 0 for none.
        skips: True for the U-Net, False for the encoder-decoder without skip connections.
        dtype: a Keras dtype policy, e.g. "mixed_bfloat16" (the output stays float32); None: the global one.
        synchronized_batchnorm: BatchNorm over the global batch under a tf.distribute strategy.
        biases: "normless" (a bias only where no normalization follows, which would cancel it)
            or "all" (every convolution: junyanz's networks with instance norm).
        dropout_placement: "paper" (the first three decoder blocks) or "authors" (junyanz's: the
            8x-filter decoder blocks after the innermost one, three at depth 8).
        upsample: "transpose" (the paper's 4x4 transposed convolutions) or "resize" (bilinear, then 3x3 conv).
        name: the model's name.

    Returns:
        A keras.Model from (batch, height, width, input_channels) to (..., output_channels), in [-1, 1].

    Example:
    >>> generator = build_generator(image_size=64, filters=8)
    >>> generator(keras.ops.zeros((1, 64, 64, 3))).shape
    TensorShape([1, 64, 64, 3])
    """
    _check_arguments("generator", norm=norm, upsample=upsample, biases=biases, dropout_placement=dropout_placement,
                     depth=depth, filters=filters, dropout=dropout, channels=(input_channels, output_channels))
    height, width, depth = _unet_size(image_size, depth)
    biased = norm == "none" or biases == "all"
    decoder = _DecoderBlocks(norm, dtype, synchronized_batchnorm, biased, upsample)
    encoder_filters = [min(filters * 2**index, filters * 8) for index in range(depth)]
    x = inputs = keras.Input((height, width, input_channels), name="input_image")
    encoder_outputs = []
    for index, block_filters in enumerate(encoder_filters):
        innermost = index == depth - 1
        block_norm = "none" if index == 0 or innermost else norm
        x = _down_block(x, block_filters, block_norm, f"down{index + 1}", dtype, synchronized_batchnorm,
                        use_bias=biased, activation=index > 0)
        # (height / 2**(index+1), width / 2**(index+1), block_filters): 256 -> 128x128x64 ... 1x1x512
        encoder_outputs.append(x)

    # The decoder mirrors the encoder: stage i upsamples to the size of encoder block depth-1-i.
    skip_list = list(reversed(encoder_outputs[:-1]))
    decoder_filters = list(reversed(encoder_filters[:-1]))
    for index, (block_filters, skip) in enumerate(zip(decoder_filters, skip_list)):
        dropped = index < 3 if dropout_placement == "paper" else 1 <= index <= depth - 5
        x = decoder.up(x, block_filters, dropout if dropped else 0, f"up{index + 1}")
        # 256 -> 2x2x(512+)512 ... 128x128x(64+)64. The skip's channels come first, as in junyanz's
        # torch.cat([x, model(x)]), so that the authors' kernels fit as they are.
        if skips:
            x = keras.layers.Concatenate(name=f"skip{index + 1}", dtype=dtype)([skip, x])
    return keras.Model(inputs, _output_head(x, output_channels, dtype, upsample), name=name)


def trainable_parameters(model):
    """The count of trainable weights, the figure the paper's code prints (count_params() adds
    BatchNorm's moving statistics: 9,856 more for the U-Net at 256x256).

    Example:
    >>> trainable_parameters(build_discriminator(image_size=256))
    2768705
    """
    return sum(math.prod(variable.shape) for variable in model.trainable_variables)


def receptive_field(layers):
    """The side of the input square that one PatchGAN logit sees: 0->1, 1->16, 3->70, 5->286.

    Example:
    >>> receptive_field(3)
    70
    """
    if layers == 0:
        return 1
    # Walk back from one logit: two 4x4 stride-1 convolutions, then `layers` stride-2 ones.
    field = 1
    for stride in [1, 1] + [2] * layers:
        field = (field - 1) * stride + 4
    return field


def patch_grid(image_size, layers):
    """(height, width) of the discriminator's logit map for an image of image_size."""
    height, width = parse_size(image_size)
    if layers == 0:
        return height, width

    def side(length):
        for _ in range(layers):
            length = (length + 2 - 4) // 2 + 1
        for _ in range(2):
            length = length + 2 - 4 + 1
        return length

    return side(height), side(width)


def _patch_block(x, filters, stride, norm, name, dtype=None, synchronized=False, use_bias=False):
    """Pad 1 - Conv(4x4) - norm - LeakyReLU(0.2), as junyanz's NLayerDiscriminator."""
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad", dtype=dtype)(x)
    x = keras.layers.Conv2D(
        filters,
        4,
        strides=stride,
        kernel_initializer=_weights(),
        use_bias=use_bias,
        name=f"{name}_conv",
        dtype=dtype,
    )(x)
    x = _normalization(x, norm, name, dtype, synchronized)
    return _leaky_relu(x, name, dtype)


def build_discriminator(
    *,
    image_size=(256, 256),
    input_channels=3,
    output_channels=3,
    layers=3,
    filters=64,
    norm="batch",
    dtype=None,
    synchronized_batchnorm=False,
    name="discriminator",
):
    """The conditional PatchGAN: it sees the input image and a real or generated output together.

    C64 (no norm) - C128 - C256 - C512 with LeakyReLU(0.2), then a 1-channel convolution that gives
    one logit per patch; 2,768,705 trainable parameters at layers=3 (junyanz's count). `layers`
    sets the patch (receptive field): 0 -> 1x1 (PixelGAN, 1x1 convolutions), 1 -> 16x16,
    3 -> 70x70 (paper's default), 5 -> 286x286 (ImageGAN at 256).

    Args:
        image_size: int or (height, width) of both images.
        input_channels: channels of the conditioning input image.
        output_channels: channels of the real or generated image.
        layers: number of stride-2 blocks (0 for the PixelGAN).
        filters: filters of the first block; doubled per block up to 8 * filters.
        norm: "batch", "instance" or "none".
        dtype: a Keras dtype policy for the layers, e.g. "mixed_bfloat16"; the logits stay float32.
        synchronized_batchnorm: BatchNorm over the global batch under a tf.distribute strategy.
        name: the model's name.

    Returns:
        A keras.Model taking [input_image, output_image] and giving float32 logits of shape
        (batch, *patch_grid(image_size, layers), 1).

    Example:
    >>> discriminator = build_discriminator(image_size=256, filters=8)
    >>> discriminator([keras.ops.zeros((1, 256, 256, 3))] * 2).shape
    TensorShape([1, 30, 30, 1])
    """
    height, width = parse_size(image_size)
    _check_arguments("discriminator", norm=norm, layers=layers, filters=filters, channels=(input_channels, output_channels))
    grid = patch_grid((height, width), layers)
    if min(grid) < 1:
        raise UsageError(
            f"image_size {height}x{width} is too small for a discriminator with layers={layers} "
            f"(a {receptive_field(layers)}x{receptive_field(layers)} patch); use fewer layers or larger images"
        )

    input_image = keras.Input((height, width, input_channels), name="input_image")
    output_image = keras.Input((height, width, output_channels), name="output_image")
    x = keras.layers.Concatenate(name="pair", dtype=dtype)([input_image, output_image])
    if layers == 0:
        # PixelGAN: 1x1 convolutions judge each pixel's colour alone.
        # The first convolution keeps its bias, as junyanz's PixelDiscriminator.
        x = keras.layers.Conv2D(filters, 1, kernel_initializer=_weights(), name="pixel1_conv", dtype=dtype)(x)
        x = _leaky_relu(x, "pixel1", dtype)
        x = keras.layers.Conv2D(
            filters * 2, 1, kernel_initializer=_weights(), use_bias=norm == "none", name="pixel2_conv", dtype=dtype
        )(x)
        x = _normalization(x, norm, "pixel2", dtype, synchronized_batchnorm)
        x = _leaky_relu(x, "pixel2", dtype)
        logits = keras.layers.Conv2D(1, 1, kernel_initializer=_weights(), name="logits_conv", dtype=dtype)(x)
    else:
        # The first convolution keeps its bias (no normalization follows it), as junyanz's.
        x = _patch_block(x, filters, 2, "none", "block1", dtype, use_bias=True)
        for index in range(1, layers):
            block_filters = filters * min(2**index, 8)
            x = _patch_block(x, block_filters, 2, norm, f"block{index + 1}", dtype, synchronized_batchnorm, norm == "none")
        x = _patch_block(
            x, filters * min(2**layers, 8), 1, norm, f"block{layers + 1}", dtype, synchronized_batchnorm, norm == "none"
        )
        x = keras.layers.ZeroPadding2D(1, name="logits_pad", dtype=dtype)(x)
        logits = keras.layers.Conv2D(1, 4, kernel_initializer=_weights(), name="logits_conv", dtype=dtype)(x)
    # Logits and losses stay in float32 under mixed precision.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model([input_image, output_image], logits, name=name)


def generator_from_config(config):
    """The generator a Config describes."""
    return build_generator(
        image_size=config.image_size,
        input_channels=config.input_channels,
        output_channels=config.output_channels,
        depth=config.depth,
        filters=config.generator_filters,
        norm=config.norm,
        dropout=config.dropout,
        skips=config.generator == "unet",
        dtype=config.precision,
        synchronized_batchnorm=config.sync_batchnorm,
        biases=config.generator_biases,
        dropout_placement=config.dropout_placement,
        upsample=config.upsample,
    )


def build_models(config):
    """The generator and discriminator a Config describes.

    Example:
    >>> from keras_pix2pix.config import Config
    >>> generator, discriminator = build_models(Config(image_size=64, generator_filters=8, discriminator_filters=8))
    """
    generator = generator_from_config(config)
    discriminator = build_discriminator(
        image_size=config.image_size,
        input_channels=config.input_channels,
        output_channels=config.output_channels,
        layers=config.discriminator_layers,
        filters=config.discriminator_filters,
        norm=config.norm,
        dtype=config.precision,
        synchronized_batchnorm=config.sync_batchnorm,
    )
    return generator, discriminator
