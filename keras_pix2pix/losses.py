"""The pix2pix objective (paper, section 3): a conditional GAN loss plus lambda * L1.

Each loss is averaged per example, then over the global batch with tf.nn.compute_average_loss,
so that the same code gives the same numbers on one device or many replicas.
"""

import tensorflow as tf

from keras_pix2pix.config import GAN_LOSSES, check_choice


def _per_example_mean(values):
    """Mean over every axis but the batch axis."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def _gan_term(logits, is_real, gan_loss):
    """Per-example GAN loss of PatchGAN logits against the label real (1) or fake (0)."""
    check_choice("gan_loss", gan_loss, GAN_LOSSES)
    logits = tf.cast(logits, tf.float32)
    labels = tf.ones_like(logits) if is_real else tf.zeros_like(logits)
    if gan_loss == "vanilla":
        values = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    else:
        values = tf.square(logits - labels)
    return _per_example_mean(values)


def generator_loss(fake_logits, generated, target, *, lambda_l1=100.0, gan_loss="vanilla"):
    """The generator's loss: fool the discriminator, and stay near the target in L1.

    Args:
        fake_logits: the discriminator's logits on (input, generated) pairs.
        generated: the generator's outputs in [-1, 1].
        target: the real outputs in [-1, 1].
        lambda_l1: weight of the L1 term (paper: 100).
        gan_loss: "vanilla" (cross-entropy, the paper's) or "lsgan" (least squares).

    Returns:
        (total, gan, l1), scalars averaged over the global batch; total = gan + lambda_l1 * l1.

    Example:
    >>> total, gan, l1 = generator_loss(tf.zeros((1, 30, 30, 1)), tf.zeros((1, 8, 8, 3)), tf.ones((1, 8, 8, 3)))
    >>> round(float(l1), 3), round(float(gan), 3)
    (1.0, 0.693)
    """
    gan = tf.nn.compute_average_loss(_gan_term(fake_logits, True, gan_loss))
    difference = tf.abs(tf.cast(target, tf.float32) - tf.cast(generated, tf.float32))
    l1 = tf.nn.compute_average_loss(_per_example_mean(difference))
    return gan + lambda_l1 * l1, gan, l1


def discriminator_loss(real_logits, fake_logits, *, gan_loss="vanilla"):
    """The discriminator's loss: real pairs to 1, generated pairs to 0, halved as in the paper.

    Halving slows the discriminator down relative to the generator (paper, section 3.3).

    Args:
        real_logits: logits on (input, target) pairs.
        fake_logits: logits on (input, generated) pairs.
        gan_loss: "vanilla" or "lsgan".

    Returns:
        (total, real, fake), scalars averaged over the global batch; total = (real + fake) / 2.

    Example:
    >>> total, real, fake = discriminator_loss(tf.zeros((1, 30, 30, 1)), tf.zeros((1, 30, 30, 1)))
    >>> round(float(total), 3)
    0.693
    """
    real = tf.nn.compute_average_loss(_gan_term(real_logits, True, gan_loss))
    fake = tf.nn.compute_average_loss(_gan_term(fake_logits, False, gan_loss))
    return (real + fake) / 2, real, fake
