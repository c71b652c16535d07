import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_pix2pix.models import build_discriminator, build_generator, patch_grid, receptive_field, trainable_parameters


def test_generator_has_the_authors_parameter_count():
    generator = build_generator(image_size=256)
    # junyanz's unet_256 with batch norm: 54,413,955 trainable; Keras also counts 9,856 moving statistics.
    assert trainable_parameters(generator) == 54_413_955
    assert generator.count_params() == 54_413_955 + 9_856
    assert generator.output_shape == (None, 256, 256, 3)


def test_discriminator_has_the_authors_parameter_count_and_grid():
    discriminator = build_discriminator(image_size=256, layers=3)
    assert trainable_parameters(discriminator) == 2_768_705  # junyanz's NLayerDiscriminator(n_layers=3)
    assert discriminator.output_shape == (None, 30, 30, 1)
    assert receptive_field(3) == 70


def _reference_unet(images, model, depth, batch_statistics):
    """junyanz's UnetSkipConnectionBlock, written from its code with plain TensorFlow ops and the
    Keras model's weights: block k's forward is cat([x, model(x)]) (the outermost: model(x)),
    where model is down = [LeakyReLU, Conv, BN] (outermost: [Conv]; innermost: [LeakyReLU,
    Conv]), the inner block, then up = [ReLU, ConvTranspose, BN] (outermost: [ReLU,
    ConvTranspose, Tanh]). Its in-place LeakyReLU also rewrites x before the concatenation; a ReLU
    follows either way, so the function is the same."""

    def weights(name):
        return [np.asarray(weight, np.float64) for weight in model.get_layer(name).get_weights()]

    def conv(x, name):  # nn.Conv2d(kernel_size=4, stride=2, padding=1)
        (kernel, *bias) = weights(name)
        x = tf.nn.conv2d(x, kernel, 2, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return x + bias[0] if bias else x

    def conv_transpose(x, name):  # nn.ConvTranspose2d(kernel_size=4, stride=2, padding=1): crop 1 per side
        (kernel, *bias) = weights(name)
        height, width = x.shape[1:3]
        full = tf.nn.conv2d_transpose(x, kernel, [x.shape[0], 2 * height + 2, 2 * width + 2, kernel.shape[2]], 2, "VALID")
        full = full[:, 1:-1, 1:-1, :]
        return full + bias[0] if bias else full

    def batch_norm(x, name):
        gamma, beta, moving_mean, moving_variance = weights(name)
        if batch_statistics:
            moving_mean, moving_variance = tf.nn.moments(x, axes=[0, 1, 2])
        return (x - moving_mean) / tf.sqrt(moving_variance + 1e-5) * gamma + beta

    def block(x, k):
        if k == 1:
            inner = block(conv(x, "down1_conv"), 2)
            return tf.tanh(conv_transpose(tf.nn.relu(inner), "output_convtranspose"))
        inner = conv(tf.nn.leaky_relu(x, 0.2), f"down{k}_conv")
        if k < depth:
            inner = block(batch_norm(inner, f"down{k}_batchnorm"), k + 1)
        up = depth - k + 1
        inner = batch_norm(conv_transpose(tf.nn.relu(inner), f"up{up}_convtranspose"), f"up{up}_batchnorm")
        return tf.concat([x, inner], axis=-1)

    return block(tf.cast(images, tf.float64), 1)


def test_unet_is_the_authors_network():
    # A tiny U-Net (32x32, depth 5, 4 base filters), random weights and moving statistics far from
    # 0 and 1, against the reference above: the same function in inference and with batch statistics.
    generator = build_generator(image_size=32, filters=4, dropout=0.0)
    random = np.random.RandomState(0)
    for layer in generator.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([
                random.uniform(0.5, 1.5, channels), random.normal(0, 0.5, channels),
                random.normal(0, 2, channels), random.uniform(0.5, 4, channels),
            ])
        elif layer.weights:
            layer.set_weights([random.normal(0, 0.1, weight.shape) for weight in layer.get_weights()])
    images = random.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    for training in (False, True):
        expected = _reference_unet(images, generator, depth=5, batch_statistics=training).numpy()
        actual = generator(images, training=training).numpy()
        assert np.abs(expected).mean() > 0.05  # not a near-constant output that anything would match
        assert np.abs(actual - expected).max() < 1e-5, training


def test_generator_output_shape_and_tanh_range():
    generator = build_generator(image_size=64, filters=8)
    images = tf.random.uniform((2, 64, 64, 3), -1, 1, seed=1)
    outputs = generator(images, training=True).numpy()
    assert outputs.shape == (2, 64, 64, 3)
    assert outputs.min() >= -1 and outputs.max() <= 1
    # The last layer is a tanh: a huge pre-activation saturates at exactly +-1, never beyond.
    assert isinstance(generator.layers[-1], keras.layers.Activation)
    assert generator.layers[-1].activation is keras.activations.tanh


def test_unet_has_skips_and_encoder_decoder_has_none():
    unet = build_generator(image_size=64, filters=8)
    plain = build_generator(image_size=64, filters=8, skips=False)
    concatenations = [layer for layer in unet.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len(concatenations) == 5  # depth 6 at 64 px: skips from 5 encoder blocks
    assert not [layer for layer in plain.layers if isinstance(layer, keras.layers.Concatenate)]
    # Without skips the decoder sees only its own channels, so its convolutions are smaller.
    assert plain.count_params() < unet.count_params()


def test_innermost_and_first_blocks_have_no_normalization():
    generator = build_generator(image_size=64, filters=8)
    names = {layer.name for layer in generator.layers}
    assert "down1_batchnorm" not in names
    assert "down6_batchnorm" not in names  # innermost at 64 px (depth 6)
    assert {"down2_batchnorm", "down5_batchnorm", "up1_batchnorm"} <= names
    dropouts = [layer.name for layer in generator.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == ["up1_dropout", "up2_dropout", "up3_dropout"]


def test_bottleneck_carries_information_at_batch_size_one():
    # With a BatchNorm on the 1x1 bottleneck (the TF tutorial's defect) every input would give
    # the same bottleneck at batch 1 in training mode. Here two inputs must differ there.
    generator = build_generator(image_size=32, filters=8)
    bottleneck = keras.Model(generator.input, generator.get_layer("down5_conv").output)
    first = bottleneck(tf.random.uniform((1, 32, 32, 3), -1, 1, seed=1), training=True)
    second = bottleneck(tf.random.uniform((1, 32, 32, 3), -1, 1, seed=2), training=True)
    assert first.shape == (1, 1, 1, 64)
    assert np.abs(first.numpy() - second.numpy()).max() > 1e-3


def test_depth_follows_the_size():
    for size, depth in ((32, 5), (64, 6), (128, 7)):
        generator = build_generator(image_size=size, filters=4)
        downs = [layer for layer in generator.layers if layer.name.endswith("_conv") and layer.name.startswith("down")]
        assert len(downs) == depth


def test_non_square_images():
    generator = build_generator(image_size=(32, 64), filters=8)
    assert generator(tf.zeros((1, 32, 64, 3))).shape == (1, 32, 64, 3)
    discriminator = build_discriminator(image_size=(32, 64), layers=1, filters=8)
    assert discriminator([tf.zeros((1, 32, 64, 3))] * 2).shape == (1, *patch_grid((32, 64), 1), 1)
    assert patch_grid((32, 64), 1) == (14, 30)


def test_one_channel_input_and_output():
    generator = build_generator(image_size=32, input_channels=1, output_channels=1, filters=8)
    assert generator(tf.zeros((1, 32, 32, 1))).shape == (1, 32, 32, 1)
    discriminator = build_discriminator(image_size=32, input_channels=1, output_channels=3, layers=1, filters=8)
    assert discriminator([tf.zeros((1, 32, 32, 1)), tf.zeros((1, 32, 32, 3))]).shape == (1, 14, 14, 1)


@pytest.mark.parametrize("norm", ["instance", "none"])
def test_other_norms_build_and_run(norm):
    generator = build_generator(image_size=32, filters=8, norm=norm)
    assert not [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert generator(tf.zeros((1, 32, 32, 3))).shape == (1, 32, 32, 3)


@pytest.mark.parametrize(
    "builder, arguments, message",
    [
        (build_generator, dict(image_size=(96, 96)), r"image_size must be a multiple of 2\*\*depth = 64 .* got 96x96"),
        (build_generator, dict(image_size=64, depth=7), r"multiple of 2\*\*depth = 128 on each side \(depth 7\); got 64x64"),
        (build_generator, dict(norm="layer"), r"norm must be one of batch, instance, none; got 'layer'"),
        (build_generator, dict(image_size="big"), r"image_size must be a positive size .* got 'big'"),
        (build_generator, dict(depth=0), r"depth must be an integer >= 1; got 0"),
        (build_generator, dict(dropout=1.5), r"dropout must be a number >= 0.0 and <= 0.99; got 1.5"),
        (build_discriminator, dict(layers=-1), r"layers must be an integer between 0 and 8; got -1"),
        (build_discriminator, dict(image_size=32, layers=5), r"image_size 32x32 is too small .* layers=5 \(a 286x286 patch\)"),
        (build_discriminator, dict(norm="group"), r"norm must be one of batch, instance, none; got 'group'"),
    ],
)
def test_invalid_arguments_name_the_argument(builder, arguments, message):
    with pytest.raises(ValueError, match=message):
        builder(**arguments)


def _field_box(gradient):
    """(top, left, height, width) of the nonzero region of a (H, W, C) gradient."""
    rows = np.nonzero(np.abs(gradient).sum(axis=(1, 2)))[0]
    cols = np.nonzero(np.abs(gradient).sum(axis=(0, 2)))[0]
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("layers, field, size", [(0, 1, 16), (1, 16, 64), (3, 70, 160), (5, 286, 544)])
def test_receptive_field_is_proven_by_gradients(layers, field, size):
    assert receptive_field(layers) == field
    discriminator = build_discriminator(image_size=size, input_channels=1, output_channels=1, layers=layers, filters=2)
    images = tf.random.normal((1, size, size, 1), seed=3)
    others = tf.random.normal((1, size, size, 1), seed=4)
    grid_height, grid_width = patch_grid(size, layers)
    stride = 2**layers

    # 1) One logit sees exactly a field x field square of the input.
    center = (grid_height // 2, grid_width // 2)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = discriminator([images, others], training=False)
        chosen = logits[0, center[0], center[1], 0]
    top, left, height, width = _field_box(tape.gradient(chosen, images)[0].numpy())
    assert (height, width) == (field, field)

    # 2) One input pixel reaches exactly the logits whose field holds it (forward-mode).
    pixel = (size // 2 + 1, size // 3)
    tangent = np.zeros((1, size, size, 1), np.float32)
    tangent[0, pixel[0], pixel[1], 0] = 1
    with tf.autodiff.ForwardAccumulator(images, tf.constant(tangent)) as accumulator:
        logits = discriminator([images, others], training=False)
    reached = np.abs(accumulator.jvp(logits)[0, ..., 0].numpy()) > 0
    expected = np.zeros((grid_height, grid_width), bool)
    for row in range(grid_height):
        for col in range(grid_width):
            row_start = top + (row - center[0]) * stride
            col_start = left + (col - center[1]) * stride
            expected[row, col] = row_start <= pixel[0] < row_start + field and col_start <= pixel[1] < col_start + field
    assert expected.sum() > 0
    np.testing.assert_array_equal(reached, expected)


def test_biases_sit_where_the_authors_put_them():
    def biased(model):
        return [layer.name for layer in model.layers if getattr(layer, "use_bias", False)]

    # Batch norm (the default): only the layers that make the outputs keep a bias.
    assert biased(build_generator(image_size=64, filters=8)) == ["output_convtranspose"]
    # The discriminator's first convolution, which no normalization follows, keeps its bias (junyanz's).
    assert biased(build_discriminator(image_size=64, filters=8)) == ["block1_conv", "logits_conv"]
    # Without normalization every convolution has one.
    discriminator = build_discriminator(image_size=64, filters=8, norm="none")
    assert biased(discriminator) == [layer.name for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]


@pytest.mark.parametrize("builder", [build_generator, build_discriminator])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_models_hold_only_stock_keras_layers(builder, norm):
    model = builder(image_size=32, filters=4, norm=norm)
    foreign = {type(layer).__module__ for layer in model.layers if not type(layer).__module__.startswith("keras.")}
    assert not foreign
