import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config, write_ab_folder
from keras_pix2pix.models import build_generator
from keras_pix2pix.modes import translate
from keras_pix2pix.translation import load_generator, predict
from keras_pix2pix.train import fit


def test_paper_mode_is_stochastic_and_keeps_the_moving_statistics():
    generator = build_generator(image_size=32, filters=8)
    images = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=1)
    moving = [variable.numpy().copy() for variable in generator.non_trainable_variables if "moving" in variable.path]
    first, second = translate(generator, images, "paper"), translate(generator, images, "paper")
    assert not np.array_equal(first.numpy(), second.numpy()), "dropout stays on in paper mode"
    for before, variable in zip(moving, [v for v in generator.non_trainable_variables if "moving" in v.path]):
        np.testing.assert_array_equal(before, variable.numpy())
    np.testing.assert_array_equal(
        translate(generator, images, "inference").numpy(), translate(generator, images, "inference").numpy()
    )


def test_paper_mode_normalizes_each_image_alone():
    generator = build_generator(image_size=32, filters=8, dropout=0.0)
    images = tf.random.uniform((3, 32, 32, 3), -1, 1, seed=2)
    together = translate(generator, images, "paper").numpy()
    alone = translate(generator, images[1:2], "paper").numpy()
    np.testing.assert_allclose(together[1:2], alone, atol=1e-6)
    # Batch statistics, not the moving ones: paper mode differs from inference mode.
    assert np.abs(together - translate(generator, images, "inference").numpy()).max() > 1e-3


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match=r"mode must be one of paper, inference, export; got 'eval'"):
        translate(build_generator(image_size=32, filters=8), tf.zeros((1, 32, 32, 3)), "eval")


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    folder = write_ab_folder(tmp_path_factory.mktemp("pairs"), count=2)
    workdir = str(tmp_path_factory.mktemp("run"))
    fit(tiny_config(dataset=folder, steps=2), workdir, verbose=False)
    return workdir


def test_predict_pairs_and_plain_images_keep_their_size(tmp_path, trained_workdir):
    pairs = write_ab_folder(tmp_path / "pairs", count=2, size=40, splits=("val",))
    plain = tmp_path / "photo.jpg"
    tf.io.write_file(str(plain), tf.io.encode_jpeg(np.zeros((24, 40, 3), np.uint8)))
    written = predict(trained_workdir, [os.path.join(pairs, "val")], str(tmp_path / "out"), pairs=True)
    assert [os.path.basename(path) for path in written] == ["0.png", "1.png"]
    assert tf.io.decode_png(tf.io.read_file(written[0])).shape == (40, 40, 3)
    written = predict(trained_workdir, [str(plain)], str(tmp_path / "out2"), mode="inference")
    assert tf.io.decode_png(tf.io.read_file(written[0])).shape == (24, 40, 3)


def test_predict_with_a_seed_repeats_itself(tmp_path, trained_workdir):
    image = tmp_path / "image.png"
    tf.io.write_file(str(image), tf.io.encode_png(np.full((32, 32, 3), 90, np.uint8)))
    first = predict(trained_workdir, [str(image)], str(tmp_path / "a"), seed=5)
    second = predict(trained_workdir, [str(image)], str(tmp_path / "b"), seed=5)
    assert tf.io.read_file(first[0]).numpy() == tf.io.read_file(second[0]).numpy()


def test_bad_inputs_are_named(tmp_path, trained_workdir):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match=r"broken.jpg is not a readable JPEG or PNG image"):
        predict(trained_workdir, [str(broken)], str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"input .*missing.png does not exist"):
        predict(trained_workdir, [str(tmp_path / "missing.png")], str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"model .*nomodel does not exist"):
        predict(str(tmp_path / "nomodel"), [str(broken)], str(tmp_path / "out"))


def test_a_workdir_without_generator_keras_loads_its_checkpoint(tmp_path, trained_workdir):
    generator, config = load_generator(trained_workdir)
    os.rename(os.path.join(trained_workdir, "generator.keras"), tmp_path / "moved.keras")
    try:
        restored, _ = load_generator(trained_workdir)
    finally:
        os.rename(tmp_path / "moved.keras", os.path.join(trained_workdir, "generator.keras"))
    images = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=3)
    np.testing.assert_array_equal(
        translate(generator, images, "inference").numpy(), translate(restored, images, "inference").numpy()
    )
    assert config.image_size == (32, 32)
    assert isinstance(restored, keras.Model)
