"""Images of any size: resize, native (the whole image at its resolution) and tiles (blended)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import png, refused, run_command, write_ab_folder

from keras_pix2pix import sizing
from keras_pix2pix.models import build_generator
from keras_pix2pix.modes import batch_normalizations, paper_statistics, translate

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from seams import seam_ratio  # noqa: E402


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(3)
    return build_generator(image_size=32, filters=4)


def pointwise(path=None):
    """A generator whose output at a pixel depends on that pixel alone: any seam would be the blending's."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="tanh")(inputs))
    if path:
        model.save(path)
    return model



def normalized_pointwise():
    """A model whose output at a pixel depends on that pixel and BatchNorm's statistics alone."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 1)(inputs))
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="tanh")(features))


def flat_scene(height=96, width=160):
    """Flat sky over a flat wall with two windows, in [0, 1], with a little noise: tiles all sky beside tiles of wall."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = (0.0, 0.0, 0.67)
    image[40:, 20:140] = (1.0, 0.33, 0.0)
    image[55:70, 40:60] = image[55:70, 100:120] = (0.0, 0.67, 1.0)
    return np.clip(image + np.random.RandomState(6).uniform(-0.02, 0.02, image.shape), 0, 1).astype(np.float32)


def test_paper_mode_tiles_are_normalized_with_the_whole_images_statistics(monkeypatch):
    monkeypatch.setattr(sizing, "CONTEXT_TILE_SIDE", 32, raising=False)  # tiles of the model's size
    model = normalized_pointwise()
    image = flat_scene()
    tiled = sizing.translate_image(model, image, "paper", "tiles").numpy()
    whole = sizing.translate_image(model, image, "paper", "native").numpy()
    # Each tile normalized by its own statistics, a tile of sky and one of sky and wall drew the
    # same sky apart (by up to 1.9): a seam ratio 3.9 times the whole image's, a grid. The
    # whole image's statistics, pooled over the tiles pixel by pixel, are the same.
    assert np.abs(tiled - whole).max() < 1e-4
    assert abs(seam_ratio(tiled, (32, 32))[0] / seam_ratio(whole, (32, 32))[0] - 1) < 0.1


def test_statistics_pooled_over_a_u_nets_tiles_are_the_whole_images(monkeypatch):
    monkeypatch.setattr(sizing, "CONTEXT_TILE_SIDE", 64, raising=False)
    keras.utils.set_random_seed(8)
    model = build_generator(image_size=32, filters=4)
    image = tf.constant(flat_scene() * 2 - 1)
    network = sizing.at_size(model, 64, 64)
    pooled = sizing.whole_image_statistics(network, image)
    whole = paper_statistics(sizing.at_size(model, 96, 160), image[None])
    assert len(pooled) == len(whole) == 2 * len(batch_normalizations(model))
    # The first BatchNorm sees only convolutions: over 64-pixel tiles (at 1/4 of the image's
    # resolution) its statistics are the whole image's but where the tiles' zero padding reaches.
    mean, variance, whole_mean, whole_variance = pooled[0], pooled[1], whole[0], whole[1]
    assert np.abs(mean - whole_mean).max() < 0.05 * np.sqrt(whole_variance).min()
    assert np.abs(np.sqrt(variance / whole_variance) - 1).max() < 0.05


def test_an_image_up_to_the_context_tile_runs_as_one_tile_as_native():
    keras.utils.set_random_seed(7)
    model = build_generator(image_size=32, filters=4, dropout=0)
    image = flat_scene()
    tiled = sizing.translate_image(model, image, "paper", "auto").numpy()
    whole = sizing.translate_image(model, image, "paper", "native").numpy()
    # In 32-pixel tiles, each tile's context is its own: 0.04 from the whole image on average.
    assert np.abs(tiled - whole).max() < 1e-4
    assert sizing.tile_size_for(model, image.shape, "paper") == (96, 160)
    assert sizing.tile_size_for(model, image.shape, "export") == (32, 32)  # the SavedModel's tiles


@pytest.mark.parametrize("height, width", [(300, 200), (257, 513), (5, 3)])
def test_native_keeps_the_size_and_computes_the_padded_image(generator, height, width):
    image = np.random.RandomState(0).uniform(-1, 1, (height, width, 3)).astype(np.float32)
    output = sizing.native(generator, tf.constant(image), "inference").numpy()
    assert output.shape == (height, width, 3)
    # The same network built at the padded size, on the image padded by numpy: the same pixels.
    padded_height, padded_width = -(-height // 32) * 32, -(-width // 32) * 32
    padded = image
    while padded.shape[:2] != (padded_height, padded_width):
        down = min(padded_height - padded.shape[0], padded.shape[0] - 1)
        right = min(padded_width - padded.shape[1], padded.shape[1] - 1)
        padded = np.pad(padded, [(0, down), (0, right), (0, 0)], mode="reflect")
    whole = build_generator(image_size=(padded_height, padded_width), depth=5, filters=4)
    whole.set_weights(generator.get_weights())
    expected = translate(whole, tf.constant(padded[None]), "inference")[0].numpy()[:height, :width]
    assert np.abs(output - expected).max() < 1e-5


def test_tiles_blend_without_seams():
    model = pointwise()
    image = np.random.RandomState(1).uniform(-1, 1, (100, 70, 3)).astype(np.float32)
    tiled = sizing.tiles(model, tf.constant(image), "inference", overlap=0.25).numpy()
    whole = sizing.at_size(model, 100, 70)(image[None])[0].numpy()
    error = np.abs(tiled - whole)
    assert error.max() < 1e-5
    # Across the tile borders (columns 24-32, 48-56 ... of 32-pixel tiles every 24) no larger than inside.
    borders = np.zeros(100, bool)
    borders[[23, 24, 31, 32, 47, 48, 55, 56]] = True
    assert error[borders].max() <= error[~borders].max() + 1e-6


def test_predict_translates_a_large_image_in_tiles_at_its_size(tmp_path, capsys):
    pointwise(tmp_path / "pointwise.keras")
    image = np.random.RandomState(2).randint(0, 256, (90, 130, 3)).astype(np.uint8)
    tf.io.write_file(str(tmp_path / "large.png"), tf.io.encode_png(image))
    for choice in ("auto", "tiles", "native", "resize"):
        status, out, err = run_command(capsys, "predict", "--model", tmp_path / "pointwise.keras", tmp_path / "large.png",
                                       "--output", tmp_path / choice, "--sizing", choice, "--mode", "inference")
        assert status == 0, err
    outputs = {choice: tf.io.decode_png(open(tmp_path / choice / "large.png", "rb").read()).numpy().astype(int)
               for choice in ("auto", "tiles", "native", "resize")}
    assert all(output.shape == (90, 130, 3) for output in outputs.values())
    # A pointwise model: tiles and native give the whole image's pixels; resize blurs them.
    assert np.abs(outputs["tiles"] - outputs["native"]).max() <= 1 and np.array_equal(outputs["auto"], outputs["tiles"])
    assert np.abs(outputs["resize"] - outputs["native"]).mean() > 5


def test_sizing_limits_are_one_line(tmp_path, capsys, monkeypatch):
    pointwise(tmp_path / "pointwise.keras")
    png(tmp_path / "x.png", 40, 40)
    monkeypatch.setattr(sizing, "NATIVE_PIXELS", 1000)
    refused(capsys, r"--sizing native runs an image whole, and 40x40 is over its limit of 0\.001 megapixels: use "
            r"--sizing tiles", "predict", "--model", tmp_path / "pointwise.keras", tmp_path / "x.png", "--output",
            tmp_path / "out", "--sizing", "native")
    refused(capsys, r"--tile-overlap must be a number >= 0\.0 and <= 0\.5; got 0\.9", "predict", "--model",
            tmp_path / "pointwise.keras", tmp_path / "x.png", "--output", tmp_path / "out2", "--sizing", "tiles",
            "--tile-overlap", "0.9")


MEASURED = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(
    result.returncode,
    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
    result.stderr[-300:].replace(chr(10), " "),
)
"""


@pytest.mark.slow
def test_a_3000_by_2000_image_in_256_pixel_tiles_stays_under_2_5_gb(tmp_path):
    keras.utils.set_random_seed(5)
    build_generator(image_size=256, filters=16).save(tmp_path / "generator.keras")
    image = np.random.RandomState(3).randint(0, 256, (2000, 3000, 3)).astype(np.uint8)
    tf.io.write_file(str(tmp_path / "aerial.png"), tf.io.encode_png(image))
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, sys.executable, "-m", "keras_pix2pix", "predict", "--model",
         str(tmp_path / "generator.keras"), str(tmp_path / "aerial.png"), "--output", str(tmp_path / "out"),
         "--sizing", "tiles", "--mode", "inference"],
        capture_output=True, text=True, timeout=600,
    )
    status, peak, *tail = result.stdout.strip().split(" ", 2)
    assert status == "0", tail
    assert int(peak) < 2560, f"peak RSS {peak} MB"
    assert tf.io.decode_png(open(tmp_path / "out" / "aerial.png", "rb").read()).shape == (2000, 3000, 3)
    assert os.path.getsize(tmp_path / "out" / "aerial.png") > 0


def test_evaluate_scores_each_pair_at_its_own_size_when_asked(tmp_path, capsys):
    pointwise(tmp_path / "pointwise.keras")
    folder = write_ab_folder(tmp_path / "pairs", count=2, size=48, splits=("test",))
    reports = {}
    for choice in ("resize", "native", "tiles"):
        status, out, err = run_command(capsys, "evaluate", "--model", tmp_path / "pointwise.keras", "--dataset", folder,
                                       "--output", tmp_path / choice, "--sizing", choice, "--mode", "inference")
        assert status == 0, err
        reports[choice] = json.load(open(tmp_path / choice / "metrics.json"))
        assert f"sizing {choice}" in reports[choice]["summary"]["source"]
    # The thumbnails hold each output at its pair's size (48x48) or at the model's (32x32).
    sizes = {choice: tf.io.decode_png(open(tmp_path / choice / "images" / "00001_output.png", "rb").read()).shape[:2]
             for choice in reports}
    assert sizes == {"resize": (32, 32), "native": (48, 48), "tiles": (48, 48)}
    # A pointwise model: native and tiles score the same pixels.
    assert abs(reports["native"]["summary"]["l1"] - reports["tiles"]["summary"]["l1"]) < 1e-4
