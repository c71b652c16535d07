"""Faster forms of the paper's networks: the same functions, computed the way a target runs fastest.

keras_pix2pix.models builds the networks from stock Keras layers. `clone_as(model, target)` copies
such a model into the form a target runs fastest, with the same weights; tests/test_fast.py proves
that each form computes the same function (outputs and gradients) as the stock layers. Training and
export call clone_as; nothing else knows these layers.

Targets:
- "keras": stock layers only (what generator.keras holds).
- "train": training on this project's CPUs: BatchNorm as TensorFlow's fused kernel
  (FusedBatchNormalization), the U-Net's 4x4 stride-2 layers on maps of at most 8x8 pixels as
  matrix products (DownConvolution, UpConvolution), and a LeakyReLU right after a biased
  convolution in a form grappler's remapper leaves alone (UnfusedLeakyReLU).
- "reference": stock layers with only that LeakyReLU change: bench/train.py's reference path
  (the tutorial's recipe, without TensorFlow 2.21's remapper failure).
- "tflite": XNNPACK in float: per-image normalization in 4-D (PerImageNormalization) and
  transposed convolutions as a convolution and depth_to_space (SubPixelConvolution).
- "tflite_int8": full-integer TFLite: SubPixelConvolution, per-image normalization kept as
  GroupNormalization (quantized, it measured faster and closer to float).

The layers below subclass the stock ones and keep their variables and configs, so checkpoints of
one form restore into another, and each is registered for generator.keras files written before
the networks were stock.

Example:
>>> from keras_pix2pix.models import build_generator
>>> generator = build_generator(image_size=32, filters=4)
>>> training_form = clone_as(generator, "train")
>>> sorted({type(layer).__name__ for layer in training_form.layers} - {type(layer).__name__ for layer in generator.layers})
['DownConvolution', 'FusedBatchNormalization', 'UpConvolution']
"""

import inspect

import keras
import tensorflow as tf

from keras_pix2pix.config import check_choice

TARGETS = ("keras", "train", "reference", "tflite", "tflite_int8")

# The largest map (height x width) on which a 4x4 stride-2 layer runs as matrix products in
# training: measured on the 2-core CPU of bench/README.md, where oneDNN ran these layers at
# 2-15 GFLOP/s; from 16x16 on, the convolution wins.
SMALL_MAP_PIXELS = 64


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training pass is TensorFlow's fused kernel.

    The same statistics, moving averages and variables as the Keras layer (so checkpoints and
    .keras files are interchangeable), computed by FusedBatchNormV3 and its gradient in one pass
    each instead of about ten elementwise ops, on bfloat16 inputs without a float32 copy.
    Inference, synchronized statistics and masks take the Keras path.

    Example:
    >>> layer = FusedBatchNormalization()
    >>> outputs = layer(keras.random.normal((2, 4, 4, 3)), training=True)
    >>> abs(round(float(keras.ops.mean(outputs)), 3)), round(float(keras.ops.std(outputs)), 2)
    (0.0, 1.0)
    """

    def call(self, inputs, training=None, mask=None):
        fused = training and self.trainable and not self.synchronized and mask is None
        if not fused or len(inputs.shape) != 4 or list(self._reduction_axes) != [0, 1, 2]:
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        scale = self.gamma if self.scale else tf.ones([channels], tf.float32)
        offset = self.beta if self.center else tf.zeros([channels], tf.float32)
        empty = tf.constant([], tf.float32)
        outputs, mean, unbiased_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.cast(scale, tf.float32),
            offset=tf.cast(offset, tf.float32),
            mean=empty,
            variance=empty,
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel returns the variance with Bessel's correction; Keras averages the biased one.
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        variance = unbiased_variance * tf.maximum(count - 1.0, 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def _four_by_four_stride_two(layer):
    """Whether a convolution layer is 4x4, stride 2, "same", channels last: the only kind the forms below rewrite."""
    return (
        tuple(layer.kernel_size) == (4, 4)
        and tuple(layer.strides) == (2, 2)
        and layer.padding == "same"
        and layer.data_format == "channels_last"
        and tuple(layer.dilation_rate) == (1, 1)
        and getattr(layer, "output_padding", None) is None
    )


def _small_map(layer, inputs):
    """Whether a layer is a 4x4 stride-2 "same" convolution on a map of at most 8x8 pixels.

    There the U-Net's layers have 4M-8M-weight kernels and few pixels, and oneDNN's convolutions
    and their gradients run at 2-15 GFLOP/s; written as matrix products, forward and backward took
    about half the time on the 2-core CPU of bench/README.md (from 16x16 on, the convolution wins).
    """
    height, width = inputs.shape[1], inputs.shape[2]
    return _four_by_four_stride_two(layer) and height is not None and width is not None and height * width <= SMALL_MAP_PIXELS


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class DownConvolution(keras.layers.Conv2D):
    """keras.layers.Conv2D computing its 4x4 stride-2 "same" layers on small maps as one matrix product.

    The same layer, variables and outputs (to float rounding) as the Keras layer; see _small_map
    for where and why. On the U-Net's innermost encoder layers (8x8, 4x4 and 2x2 inputs at 256)
    it measured faster forward and backward, in float32 and more so in bfloat16 (bench/README.md).

    Example:
    >>> layer = DownConvolution(8, 4, strides=2, padding="same")
    >>> layer(keras.ops.ones((1, 4, 4, 16))).shape
    TensorShape([1, 2, 2, 8])
    """

    def call(self, inputs):
        height, width, input_channels = inputs.shape[1:]
        if not _small_map(self, inputs) or height % 2 or width % 2:
            return super().call(inputs)
        # "same" pads one pixel on each side; output pixel i sees padded rows 2i .. 2i + 3, that is
        # 2x2 blocks i and i + 1 (block shift a), rows 2a + b of the kernel (phase b in the block).
        blocks = tf.nn.space_to_depth(tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]]), 2)
        taps = tf.stack(
            [blocks[:, a : a + height // 2, c : c + width // 2, :] for a in (0, 1) for c in (0, 1)], axis=3
        )  # (batch, height / 2, width / 2, a_row * 2 + a_col, (b_row, b_col, input_channels))
        taps = tf.reshape(taps, [-1, height // 2, width // 2, 2, 2, 2, 2, input_channels])
        taps = tf.transpose(taps, [0, 1, 2, 3, 5, 4, 6, 7])  # (a_row, b_row, a_col, b_col): the kernel's (row, column)
        kernel = tf.reshape(self.kernel, [16 * input_channels, self.filters])
        outputs = tf.matmul(tf.reshape(taps, [-1, 16 * input_channels]), kernel)
        outputs = tf.reshape(outputs, [-1, height // 2, width // 2, self.filters])
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class UpConvolution(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose computing its 4x4 stride-2 "same" layers on small maps as matrix products.

    The same layer, variables and outputs (to float rounding) as the Keras layer; see _small_map
    for where and why. One matrix product gives each input pixel's 4x4 output patch, and an
    overlap-add of the patches gives the output. On the U-Net's decoder layers of 2x2, 4x4 and 8x8
    inputs it measured close to twice as fast forward and backward (bench/README.md).

    Example:
    >>> layer = UpConvolution(8, 4, strides=2, padding="same")
    >>> layer(keras.ops.ones((1, 4, 4, 16))).shape
    TensorShape([1, 8, 8, 8])
    """

    def call(self, inputs):
        if not _small_map(self, inputs):
            return super().call(inputs)
        height, width, input_channels = inputs.shape[1:]
        filters = self.filters
        kernel = tf.reshape(self.kernel, [16 * filters, input_channels])  # (4*4*filters, input_channels)
        patches = tf.matmul(tf.reshape(inputs, [-1, input_channels]), kernel, transpose_b=True)
        # Output row 2i + r - 1 gets input row i through kernel row r = 2a + b: block i + a, phase b.
        patches = tf.reshape(patches, [-1, height, width, 2, 2, 2, 2, filters])  # (a_row, b_row, a_col, b_col)
        canvas = 0
        # unstack, not slicing: the gradient of a slice is a zero-filled copy of the whole input.
        for row_shift, row_part in enumerate(tf.unstack(patches, axis=3)):
            for column_shift, part in enumerate(tf.unstack(row_part, axis=4)):  # (batch, height, width, 2, 2, filters)
                padding = [[0, 0], [row_shift, 1 - row_shift], [column_shift, 1 - column_shift], [0, 0], [0, 0], [0, 0]]
                canvas += tf.pad(part, padding)
        # (batch, height + 1, 2, width + 1, 2, filters) -> pixels, minus the border that "same" drops.
        canvas = tf.reshape(tf.transpose(canvas, [0, 1, 3, 2, 4, 5]), [-1, 2 * height + 2, 2 * width + 2, filters])
        outputs = canvas[:, 1 : 2 * height + 1, 1 : 2 * width + 1, :]
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class SubPixelConvolution(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose computing its 4x4 stride-2 "same" layers as a 2x2 convolution and depth_to_space.

    The same layer, variables and outputs (to float rounding) and the same multiply-adds: each of
    the four output pixels of a 2x2 block sees a 2x2 window of the input through its own quarter of
    the kernel, so one 2x2 convolution with four times the filters, then depth_to_space, gives the
    output. This is the form the TFLite files use: XNNPACK runs it faster than its TRANSPOSE_CONV,
    by most on the output layer (bench/README.md). In TensorFlow the kernel rearrangement costs
    more than it saves, except on the output layer.

    Example:
    >>> layer = SubPixelConvolution(8, 4, strides=2, padding="same")
    >>> layer(keras.ops.ones((1, 4, 4, 16))).shape
    TensorShape([1, 8, 8, 8])
    """

    def call(self, inputs):
        if not _four_by_four_stride_two(self):
            return super().call(inputs)
        height, width, input_channels = inputs.shape[1:]
        filters = self.filters
        # Output row 2q + b - 1 gets input row q - a through kernel row 2a + b (a, b in {0, 1}): a
        # 2x2 correlation over the input padded by one, with the kernel's row blocks reversed.
        kernel = tf.reshape(self.kernel, [2, 2, 2, 2, filters, input_channels])  # (a_row, b_row, a_col, b_col, ...)
        kernel = tf.transpose(tf.reverse(kernel, axis=[0, 2]), [0, 2, 5, 1, 3, 4])
        kernel = tf.reshape(kernel, [2, 2, input_channels, 4 * filters])  # (2, 2, in, (b_row, b_col, filters))
        padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
        blocks = tf.nn.conv2d(padded, kernel, strides=1, padding="VALID")  # (batch, height + 1, width + 1, 4 * filters)
        outputs = tf.nn.depth_to_space(blocks, 2)[:, 1 : 2 * height + 1, 1 : 2 * width + 1, :]
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)



@keras.saving.register_keras_serializable(package="keras_pix2pix")
class UnfusedLeakyReLU(keras.layers.LeakyReLU):
    """keras.layers.LeakyReLU computed as relu(x) - slope * relu(-x): the same function, no weights.

    TensorFlow 2.21's grappler remapper fuses Conv2D-BiasAdd-LeakyRelu in a training graph and then
    fails ("fanout LeakyReluGrad exist for missing node BiasAdd": the gradient needs the BiasAdd it
    fused away), and the whole train step runs without its fusions: the discriminator's biased
    first block made the bf16 step 7-12% slower (bench/README.md). This form has no LeakyRelu op
    for the remapper to fuse.

    Example:
    >>> [round(value, 6) for value in UnfusedLeakyReLU(negative_slope=0.2)(tf.constant([-1.0, 2.0])).numpy().tolist()]
    [-0.2, 2.0]
    """

    def call(self, inputs):
        return tf.nn.relu(inputs) - self.negative_slope * tf.nn.relu(-inputs)


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class DynamicUpSampling2D(keras.layers.UpSampling2D):
    """UpSampling2D for inputs whose height and width are known only when the model runs.

    Keras's own computes the new size with ops.image.resize, which cannot take a size that is a
    tensor in a graph; tf.image.resize can, with the same result. keras_pix2pix.sizing.at_size
    puts it in a model built for any size (the SavedModel's native translation).
    """

    def call(self, inputs):
        factor = tf.constant(self.size, tf.int32)
        resized = tf.image.resize(inputs, tf.shape(inputs)[1:3] * factor, method=self.interpolation)
        return tf.cast(resized, inputs.dtype)


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class PerImageNormalization(keras.layers.Layer):
    """Normalizes each image's channels with that image's own mean and variance, then scales and shifts.

    What BatchNorm in training mode computes at batch size 1, for any batch size: instance norm
    with a per-channel scale and offset. keras.layers.GroupNormalization(groups=-1) computes the
    same, but through 5-D reshapes that XNNPACK does not run, which left the float TFLite file
    slower than Keras; this layer stays 4-D.

    Args:
        epsilon: added to the variance.

    Example:
    >>> layer = PerImageNormalization()
    >>> outputs = layer(keras.random.normal((2, 8, 8, 3)) * 5 + 2)
    >>> round(float(keras.ops.std(outputs[0, :, :, 0])), 2)
    1.0
    """

    def __init__(self, epsilon=1e-5, **keywords):
        super().__init__(**keywords)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="beta")

    def call(self, inputs):
        mean, variance = tf.nn.moments(inputs, axes=[1, 2], keepdims=True)
        return (inputs - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose update of each variable is TensorFlow's fused Adam kernel.

    The same variables and checkpoints as Keras' Adam (m and v per variable; the step size
    lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)), computed by ResourceApplyAdam in one pass over the
    memory instead of about ten elementwise ops, which for the 54M-parameter U-Net saves most of
    the optimizer's share of a step (bench/README.md). epsilon is added where PyTorch's Adam
    (the paper's code) adds it, to the bias-corrected sqrt(v_t / (1 - beta_2^t)), not to sqrt(v_t)
    as Keras does; the difference shows only while v is tiny. amsgrad and weight decay take Keras'
    path (and its epsilon).

    Args:
        The arguments of keras.optimizers.Adam.

    Example:
    >>> optimizer = FusedAdam(2e-4, beta_1=0.5, epsilon=1e-8)
    >>> weights = keras.Variable([1.0, 2.0])
    >>> _ = optimizer.apply_gradients([(tf.constant([0.5, -0.5]), weights)])
    >>> [round(float(value), 4) for value in weights.numpy()]
    [0.9998, 2.0002]
    """

    def update_step(self, gradient, variable, learning_rate):
        # Keras' own path for what the kernel lacks, and for a Keras without the slot lists read
        # here (private attributes of Keras 3.10 to 3.15; tests/test_fast.py fails on that path).
        slots = all(hasattr(self, name) for name in ("_get_variable_index", "_momentums", "_velocities"))
        if self.amsgrad or self.weight_decay or not isinstance(variable, tf.Variable) or not slots:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta2_power = tf.pow(tf.cast(self.beta_2, dtype), step)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=beta2_power,
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            # The kernel divides by sqrt(v) + epsilon with the bias correction in its step size;
            # this epsilon makes that PyTorch's m_hat / (sqrt(v_hat) + self.epsilon).
            epsilon=tf.cast(self.epsilon, dtype) * tf.sqrt(1.0 - beta2_power),
            grad=tf.cast(gradient, dtype),
        )


def adam(learning_rate, *, beta_1, beta_2, epsilon=1e-8, name=None):
    """The Adam that training uses (FusedAdam): PyTorch's update, one fused kernel per variable.

    Args:
        learning_rate: a float or a schedule.
        beta_1, beta_2, epsilon: Adam's constants (epsilon where PyTorch adds it).
        name: the optimizer's name.

    Example:
    >>> type(adam(2e-4, beta_1=0.5, beta_2=0.999)).__name__
    'FusedAdam'
    """
    return FusedAdam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name)


def _input_layers(model):
    """{layer name: names of the layers it takes its inputs from}, read from the model's config."""

    def histories(value):
        if isinstance(value, dict):
            if "keras_history" in value:
                yield value["keras_history"][0]
            for item in value.values():
                yield from histories(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from histories(item)

    if isinstance(model, keras.Sequential):
        return {layer.name: [previous.name] for previous, layer in zip(model.layers, model.layers[1:])}
    entries = model.get_config().get("layers", [])
    return {entry["name"]: list(histories(entry.get("inbound_nodes", []))) for entry in entries if "name" in entry}


def _after_biased_convolution(model):
    """Names of the LeakyReLU layers whose input is a biased convolution's output."""
    biased = {
        layer.name
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) and layer.use_bias
    }
    inputs = _input_layers(model)
    return {
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.LeakyReLU) and any(name in biased for name in inputs.get(layer.name, ()))
    }


def _per_image_statistics(layer):
    """Whether a layer is GroupNormalization with one group per channel and a scale and offset."""
    if not (isinstance(layer, keras.layers.GroupNormalization) and layer.center and layer.scale):
        return False
    # Keras sets groups=-1 to the number of channels when it builds the layer.
    return layer.groups in (-1, layer.gamma.shape[0])


def _form(layer, target, unfused_slope):
    """The class that `layer` takes in `target`'s form (built from the layer's own config)."""
    if isinstance(layer, keras.layers.LeakyReLU):
        return UnfusedLeakyReLU if unfused_slope and target in ("train", "reference") else keras.layers.LeakyReLU
    if isinstance(layer, keras.layers.BatchNormalization):
        return FusedBatchNormalization if target == "train" else keras.layers.BatchNormalization
    if isinstance(layer, keras.layers.Conv2DTranspose):
        forms = {"train": UpConvolution, "tflite": SubPixelConvolution, "tflite_int8": SubPixelConvolution}
        return forms.get(target, keras.layers.Conv2DTranspose) if _four_by_four_stride_two(layer) else type(layer)
    if isinstance(layer, keras.layers.Conv2D):
        return DownConvolution if target == "train" and _four_by_four_stride_two(layer) else keras.layers.Conv2D
    return type(layer)


def clone_with(model, replace):
    """A copy of a functional model with some layers replaced, carrying every weight over.

    Args:
        model: a functional keras.Model.
        replace: layer -> the new layer, or None to keep a copy of the same class. A new layer
            must have the old one's weights in the same order, or a prefix of them (BatchNorm's
            gamma and beta without its moving statistics).

    Returns:
        The copy; the model itself when nothing was replaced.
    """
    replacements = {layer.name: replace(layer) for layer in model.layers}
    if not any(replacements.values()):
        return model

    def clone(layer):
        return replacements[layer.name] or type(layer).from_config(layer.get_config())

    def call(layer, *arguments, **keywords):
        # The graph may have recorded a mask argument (BatchNorm's) that the new layer lacks.
        if "mask" in keywords and "mask" not in inspect.signature(layer.call).parameters:
            keywords.pop("mask")
        return layer(*arguments, **keywords)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for original, new in zip(model.layers, copy.layers):
        # Variable to variable: no host copy of the 54M weights beside the two models.
        for target, source in zip(new.weights, original.weights):
            target.assign(source)
    return copy


def in_float32(model):
    """The model computing in float32 throughout, with the same weights: the form every export takes.

    A run trained with --precision mixed_bfloat16 keeps that policy in its layers; ONNX Runtime has
    no bfloat16 convolution, and a served or converted model should not round its activations to 8
    bits of mantissa that the deployment target may not even have.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> mixed = build_generator(image_size=32, filters=4, dtype="mixed_bfloat16")
    >>> {layer.dtype_policy.name for layer in in_float32(mixed).layers}
    {'float32'}
    """

    def replace(layer):
        if layer.dtype_policy.name == "float32":
            return None
        return type(layer).from_config({**layer.get_config(), "dtype": "float32"})

    return clone_with(model, replace)


def clone_as(model, target):
    """The model in the form `target` runs fastest (see the module docstring), with the same weights.

    Args:
        model: a generator or discriminator from keras_pix2pix.models, in any form.
        target: "keras", "train", "reference", "tflite" or "tflite_int8".

    Returns:
        A keras.Model computing the same function; the model itself when it is in that form.
    """
    check_choice("target", target, TARGETS)
    unfused = _after_biased_convolution(model)

    def replace(layer):
        if _per_image_statistics(layer) and target == "tflite":
            return PerImageNormalization(epsilon=layer.epsilon, name=layer.name, dtype=layer.dtype_policy.name)
        if isinstance(layer, PerImageNormalization) and target != "tflite":
            return keras.layers.GroupNormalization(groups=-1, epsilon=layer.epsilon, name=layer.name,
                                                   dtype=layer.dtype_policy.name)
        form = _form(layer, target, layer.name in unfused)
        return None if form is type(layer) else form.from_config(layer.get_config())

    return clone_with(model, replace)
