"""keras_pix2pix.fast: every form computes the function of the stock layers it replaces."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from keras_pix2pix import fast
from keras_pix2pix.fast import DownConvolution, FusedAdam, FusedBatchNormalization, SubPixelConvolution, UpConvolution
from keras_pix2pix.models import build_discriminator, build_generator
from keras_pix2pix.modes import export_form
from keras_pix2pix.train import make_optimizers


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_batchnorm_matches_keras_batchnorm(dtype):
    keras_layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype)
    fused_layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype)
    images = tf.random.normal((2, 8, 8, 16), seed=3) * 3 + 1
    weights = tf.random.normal((2, 8, 8, 16), seed=4)
    for layer in (keras_layer, fused_layer):
        layer.build(images.shape)
        layer.gamma.assign(tf.linspace(0.5, 1.5, 16))
        layer.beta.assign(tf.linspace(-1.0, 1.0, 16))
    results = []
    for layer in (keras_layer, fused_layer):
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = layer(images, training=True)
            # Not a function of the normalized values' scale alone, whose input gradient would be ~0.
            loss = tf.reduce_sum(tf.sin(tf.cast(outputs, tf.float32)) * weights)
        gradients = tape.gradient(loss, [images, layer.gamma, layer.beta])
        results.append([outputs, *gradients, layer.moving_mean, layer.moving_variance])
    assert results[1][0].dtype == results[0][0].dtype
    tolerance = 1e-4 if dtype == "float32" else 2e-2
    for expected, actual in zip(*results):
        expected, actual = np.asarray(tf.cast(expected, tf.float32)), np.asarray(tf.cast(actual, tf.float32))
        np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    # Outside training both use the moving statistics alike.
    inference = [np.asarray(tf.cast(layer(images, training=False), tf.float32)) for layer in (keras_layer, fused_layer)]
    np.testing.assert_allclose(
        inference[1], inference[0], atol=1e-5 if dtype == "float32" else tolerance * np.abs(inference[0]).max()
    )


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("size", [(1, 1), (2, 4), (8, 8), (16, 16)])
@pytest.mark.parametrize("direction", ["down", "up"])
def test_small_map_convolutions_match_keras_layers(direction, size, dtype):
    if direction == "down" and size == (1, 1):
        size = (2, 2)
    images = tf.random.normal((2, *size, 16), seed=5)
    scale = 2 if direction == "up" else 0.5
    upward = tf.random.normal((2, int(size[0] * scale), int(size[1] * scale), 8), seed=6)
    layer_classes = (keras.layers.Conv2DTranspose, UpConvolution) if direction == "up" else (keras.layers.Conv2D, DownConvolution)
    results = []
    for layer_class in layer_classes:
        layer = layer_class(
            8,
            4,
            strides=2,
            padding="same",
            dtype=dtype,
            kernel_initializer=keras.initializers.RandomNormal(seed=7),
            bias_initializer=keras.initializers.RandomNormal(seed=8),
        )
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = layer(images)
        gradients = tape.gradient(outputs, [images, layer.kernel, layer.bias], output_gradients=tf.cast(upward, outputs.dtype))
        results.append([outputs, *gradients])
    assert results[1][0].dtype == results[0][0].dtype
    # Up to 8x8 the keras_pix2pix layer is a matrix product; from 16x16 on, the Keras convolution.
    graph = tf.function(layer).get_concrete_function(images).graph
    operations = {operation.type for operation in graph.get_operations()}
    assert ("MatMul" in operations) == (size[0] * size[1] <= 64)
    assert not operations & {"Conv2D", "Conv2DBackpropInput"} or size[0] * size[1] > 64
    # bfloat16 sums hundreds of terms at 8 bits of precision, in another order in each form.
    tolerance = 1e-4 if dtype == "float32" else 1e-1
    for expected, actual in zip(*results):
        expected, actual = np.asarray(tf.cast(expected, tf.float32)), np.asarray(tf.cast(actual, tf.float32))
        np.testing.assert_allclose(actual, expected, atol=tolerance * np.abs(expected).max())


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (16, 16)])
def test_sub_pixel_convolution_matches_keras_conv2d_transpose(size):
    images = tf.random.normal((2, *size, 16), seed=9)
    results = []
    for layer_class in (keras.layers.Conv2DTranspose, SubPixelConvolution):
        layer = layer_class(
            8,
            4,
            strides=2,
            padding="same",
            kernel_initializer=keras.initializers.RandomNormal(seed=10),
            bias_initializer=keras.initializers.RandomNormal(seed=11),
        )
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = layer(images)
            loss = tf.reduce_sum(tf.sin(outputs))
        results.append([outputs, *tape.gradient(loss, [images, layer.kernel, layer.bias])])
    for expected, actual in zip(*results):
        np.testing.assert_allclose(actual, expected, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_every_leaky_relu_after_a_biased_convolution_is_unfused_in_training_and_still_leaky_relu_0_2(norm):
    discriminator = fast.clone_as(build_discriminator(image_size=32, layers=1, filters=4, norm=norm), "train")
    unfused = [layer.name for layer in discriminator.layers if isinstance(layer, fast.UnfusedLeakyReLU)]
    # The first block's convolution has a bias; without normalization, every block's has.
    assert unfused == (["block1_leakyrelu"] if norm == "batch" else ["block1_leakyrelu", "block2_leakyrelu"])
    layer = discriminator.get_layer("block1_leakyrelu")
    assert not layer.weights
    probe = keras.Model(discriminator.inputs, [discriminator.get_layer("block1_conv").output, layer.output])
    images = tf.random.normal((1, 32, 32, 3), seed=12)
    before, after = probe([images, images])
    np.testing.assert_allclose(after, tf.nn.leaky_relu(before, 0.2), atol=1e-6)
    operations = {operation.type for operation in tf.function(layer).get_concrete_function(before).graph.get_operations()}
    assert "LeakyRelu" not in operations


def _stock_and_form(model, target):
    form = fast.clone_as(model, target)
    return {type(layer).__name__ for layer in form.layers} - {type(layer).__name__ for layer in model.layers}


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_training_form_computes_the_stock_function_and_its_gradients(norm):
    generator = build_generator(image_size=32, filters=4, norm=norm, dropout=0.0)
    discriminator = build_discriminator(image_size=32, layers=1, filters=4, norm=norm)
    images = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=13)
    for model, arguments in ((generator, images), (discriminator, [images, images])):
        form = fast.clone_as(model, "train")
        assert [variable.shape for variable in form.weights] == [variable.shape for variable in model.weights]
        results = []
        for candidate in (model, form):
            with tf.GradientTape() as tape:
                outputs = candidate(arguments, training=True)
                loss = tf.reduce_sum(tf.sin(outputs))
            results.append([outputs, *tape.gradient(loss, candidate.trainable_variables)])
        for expected, actual in zip(*results):
            np.testing.assert_allclose(actual, expected, atol=2e-4 * max(np.abs(expected).max(), 1e-3))
        # Back to stock layers: the same classes as built, the form's weights exactly.
        stock = fast.clone_as(form, "keras")
        assert [type(layer) for layer in stock.layers] == [type(layer) for layer in model.layers]
        for expected, actual in zip(form.weights, stock.weights):
            np.testing.assert_array_equal(actual.numpy(), expected.numpy())


def test_each_target_takes_its_own_layers():
    generator = build_generator(image_size=32, filters=4)
    assert _stock_and_form(generator, "train") == {"FusedBatchNormalization", "DownConvolution", "UpConvolution"}
    assert _stock_and_form(generator, "keras") == set()
    exported = export_form(generator)
    assert _stock_and_form(exported, "tflite") == {"PerImageNormalization", "SubPixelConvolution"}
    assert _stock_and_form(exported, "tflite_int8") == {"SubPixelConvolution"}
    discriminator = build_discriminator(image_size=32, layers=1, filters=4)
    assert _stock_and_form(discriminator, "reference") == {"UnfusedLeakyReLU"}
    with pytest.raises(ValueError, match=r"target must be one of keras, train, reference, tflite, tflite_int8; got 'gpu'"):
        fast.clone_as(generator, "gpu")


@pytest.mark.parametrize("target", ["tflite", "tflite_int8"])
def test_tflite_forms_compute_the_export_mode(target):
    exported = export_form(build_generator(image_size=32, filters=4))
    images = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=14)
    np.testing.assert_allclose(fast.clone_as(exported, target)(images), exported(images), atol=1e-5)


def test_fused_adam_is_pytorchs_adam_with_epsilon_1e8():
    # torch.optim.Adam, the paper's code's optimizer, adds epsilon to sqrt(v_hat); Keras adds it
    # to sqrt(v). Gradients of 1e-8 make the difference large, so the reference below decides.
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 7)).astype("float32")
    fused_weights, keras_weights = keras.Variable(start), keras.Variable(start)
    fused_adam = FusedAdam(2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
    keras_adam = keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)

    @tf.function
    def step(gradient):
        fused_adam.apply_gradients([(gradient, fused_weights)])
        keras_adam.apply_gradients([(gradient, keras_weights)])

    reference, m, v = start.astype(np.float64), 0.0, 0.0
    for t in range(1, 31):
        gradient = rng.normal(size=(5, 7)) * 1e-8
        step(tf.constant(gradient, tf.float32))
        m = 0.5 * m + 0.5 * gradient
        v = 0.999 * v + 0.001 * gradient**2
        reference -= 2e-4 * (m / (1 - 0.5**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    assert np.abs(reference - start).max() > 5e-4  # it moved
    np.testing.assert_allclose(fused_weights.numpy(), reference, atol=2e-6)
    assert np.abs(keras_weights.numpy() - reference).max() > 1e-4  # Keras' own epsilon is another rule
    # make_optimizers hands training this Adam.
    assert all(isinstance(optimizer, FusedAdam) for optimizer in make_optimizers(tiny_config(), 10, 5))
