import numpy as np
import pytest
import tensorflow as tf

from keras_pix2pix.losses import discriminator_loss, generator_loss


def _bce(logits, label):
    # -[y log s(x) + (1 - y) log(1 - s(x))], written out by hand.
    probability = 1 / (1 + np.exp(-logits))
    return -(label * np.log(probability) + (1 - label) * np.log(1 - probability))


REAL_LOGITS = np.array([[[[0.5], [-1.0]], [[2.0], [0.0]]], [[[1.5], [0.3]], [[-0.2], [-2.0]]]], np.float32)
FAKE_LOGITS = np.array([[[[-0.5], [1.0]], [[0.1], [-3.0]]], [[[0.0], [0.7]], [[-1.2], [2.5]]]], np.float32)
GENERATED = np.array([[[[0.1, -0.2, 0.3]]], [[[0.9, 0.0, -1.0]]]], np.float32)
TARGET = np.array([[[[0.0, 0.2, 0.3]]], [[[-0.1, 0.5, -0.5]]]], np.float32)


def test_generator_loss_equals_hand_computed_values():
    total, gan, l1 = generator_loss(FAKE_LOGITS, GENERATED, TARGET, lambda_l1=100.0)
    expected_gan = _bce(FAKE_LOGITS, 1.0).mean()
    expected_l1 = np.abs(GENERATED - TARGET).mean()  # (0.1+0.4+0)/3 and (1+0.5+0.5)/3, averaged
    assert expected_l1 == pytest.approx((0.5 / 3 + 2.0 / 3) / 2)
    assert float(gan) == pytest.approx(expected_gan, rel=1e-5)
    assert float(l1) == pytest.approx(expected_l1, rel=1e-6)
    assert float(total) == pytest.approx(expected_gan + 100.0 * expected_l1, rel=1e-5)


def test_discriminator_loss_is_the_halved_sum():
    total, real, fake = discriminator_loss(REAL_LOGITS, FAKE_LOGITS)
    expected_real = _bce(REAL_LOGITS, 1.0).mean()
    expected_fake = _bce(FAKE_LOGITS, 0.0).mean()
    assert float(real) == pytest.approx(expected_real, rel=1e-5)
    assert float(fake) == pytest.approx(expected_fake, rel=1e-5)
    assert float(total) == pytest.approx((expected_real + expected_fake) / 2, rel=1e-5)


def test_lsgan_losses_are_squared_errors():
    _, gan, _ = generator_loss(FAKE_LOGITS, GENERATED, TARGET, gan_loss="lsgan")
    total, real, fake = discriminator_loss(REAL_LOGITS, FAKE_LOGITS, gan_loss="lsgan")
    assert float(gan) == pytest.approx(((FAKE_LOGITS - 1) ** 2).mean(), rel=1e-6)
    assert float(real) == pytest.approx(((REAL_LOGITS - 1) ** 2).mean(), rel=1e-6)
    assert float(fake) == pytest.approx((FAKE_LOGITS**2).mean(), rel=1e-6)


def test_unknown_gan_loss_is_refused():
    with pytest.raises(ValueError, match=r"gan_loss must be one of vanilla, lsgan; got 'wgan'"):
        discriminator_loss(REAL_LOGITS, FAKE_LOGITS, gan_loss="wgan")


def test_losses_are_float32_for_bfloat16_inputs():
    total, _, _ = generator_loss(
        tf.cast(FAKE_LOGITS, tf.bfloat16), tf.cast(GENERATED, tf.bfloat16), TARGET
    )
    assert total.dtype == tf.float32
