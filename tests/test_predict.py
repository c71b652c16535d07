import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, png, refused, run_command, snapshot, tiny_config, write_ab_folder

from keras_pix2pix.models import build_generator
from keras_pix2pix.modes import translate
from keras_pix2pix.train import fit
from keras_pix2pix.translation import load_generator, predict


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


# --- refusals and bad inputs on the command line (on a copy of the trained run) ---------------------


@pytest.mark.parametrize("where", ["same", "inside"])
def test_predict_refuses_an_output_in_its_input_folder(run, tmp_path, capsys, where):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    png(inputs / "x.png")
    output = inputs if where == "same" else inputs / "translated"
    before = snapshot(tmp_path)
    refused(capsys, r"--output .* is the input folder .* or inside it", "predict", "--model", run, inputs, "--output", output)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("layout", ["two_kinds", "two_folders"])
def test_predict_refuses_inputs_that_share_an_output_name(run, tmp_path, capsys, layout):
    first, second = tmp_path / "a", tmp_path / ("a" if layout == "two_kinds" else "b")
    first.mkdir(exist_ok=True)
    second.mkdir(exist_ok=True)
    png(first / "x.png")
    with open(second / ("x.jpg" if layout == "two_kinds" else "x.png"), "wb") as file:
        file.write(tf.io.encode_jpeg(np.zeros((16, 16, 3), np.uint8)).numpy())
    inputs = [first] if layout == "two_kinds" else [first, second]
    refused(capsys, r"x\.\w+ and .*x\.\w+ would both be written to .*x\.png", "predict", "--model", run, *inputs,
            "--output", tmp_path / "out")
    assert not os.path.exists(tmp_path / "out")


def test_predict_replaces_existing_outputs_only_when_asked(run, tmp_path, capsys):
    png(tmp_path / "x.png")
    output = tmp_path / "out"
    output.mkdir()
    mine = png(output / "x.png", seed=1)
    before = snapshot(output)
    refused(capsys, r"out/x\.png exists already \(1 of the 1 outputs do\): pass --overwrite", "predict", "--model", run,
            tmp_path / "x.png", "--output", output)
    assert snapshot(output) == before
    status, out, _ = run_command(capsys, "predict", "--model", run, tmp_path / "x.png", "--output", output, "--overwrite")
    assert status == 0 and "wrote 1 image(s)" in out
    assert snapshot(output) != before and os.path.exists(mine)


def test_predict_refuses_a_huge_image_and_skips_it_when_asked(run, tmp_path, capsys, huge):
    refused(capsys, r"huge\.png is 20000x20000 .* over the limit of 0\.1 megapixels .*--skip-bad goes on past it",
            "predict", "--model", run, huge, "--output", tmp_path / "out", "--max-pixels", "100000")
    png(tmp_path / "small.png")
    status, out, _ = run_command(capsys, "predict", "--model", run, huge, tmp_path / "small.png", "--output",
                                 tmp_path / "out", "--skip-bad")
    assert status == 0 and "skipped 1 bad input(s) of 2; the first: " in out and "wrote 1 image(s)" in out


def test_a_file_name_that_is_not_utf8_trains_and_translates(tmp_path, capsys):
    folder = tmp_path / "pairs"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1, not UTF-8
    png(folder / name, 32, 64)
    status, out, err = run_command(capsys, "fit", "--dataset", folder, "--workdir", tmp_path / "run", *TINY, "--steps", "1")
    assert status == 0, err
    status, out, err = run_command(capsys, "predict", "--model", tmp_path / "run", folder / name, "--output", tmp_path / "out")
    assert status == 0, err
    assert os.fsencode(os.listdir(tmp_path / "out")[0]) == b"caf\xe9.png"


def test_predict_pairs_on_an_image_too_narrow_to_split(run, tmp_path, capsys):
    png(tmp_path / "thin.png", 16, 1)
    refused(capsys, r"thin\.png is 1 px wide: an AB pair image needs an even width", "predict", "--model", run,
            tmp_path / "thin.png", "--output", tmp_path / "out", "--pairs")


def test_a_model_file_that_is_unsafe_or_not_a_generator_is_refused(tmp_path, capsys):
    inputs = keras.Input((32, 32, 3))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda images: images * 2.0)(inputs))
    unsafe.save(tmp_path / "unsafe.keras")
    classifier = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    classifier.save(tmp_path / "classifier.keras")
    png(tmp_path / "x.png")
    refused(capsys, r"unsafe\.keras cannot be loaded as a Keras model: it holds Python code \(a Lambda layer\)",
            "predict", "--model", tmp_path / "unsafe.keras", tmp_path / "x.png", "--output", tmp_path / "out")
    refused(capsys, r"classifier\.keras is not an image-to-image generator: it maps \(None, 32, 32, 3\) to \(None, 2\)",
            "predict", "--model", tmp_path / "classifier.keras", tmp_path / "x.png", "--output", tmp_path / "out")


def test_predict_skip_bad_goes_on_past_a_corrupt_input(run, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    png(inputs / "a.png")
    (inputs / "b.png").write_bytes(b"not an image")
    png(inputs / "c.png")
    refused(capsys, r"b\.png is not a readable JPEG or PNG image .*\(1 image\(s\) written before it; --skip-bad",
            "predict", "--model", run, inputs, "--output", tmp_path / "out")
    status, out, _ = run_command(capsys, "predict", "--model", run, inputs, "--output", tmp_path / "out2", "--skip-bad")
    assert status == 0 and "skipped 1 bad input(s) of 3" in out
    assert sorted(os.listdir(tmp_path / "out2")) == ["a.png", "c.png"]


def test_predict_with_a_palette_writes_the_snapped_map_and_the_class_ids(identity_model, tmp_path, capsys):
    # A cityscapes label map of 8x8 blocks (road, car, sky, void), saved as a JPEG: its colours are
    # off by compression noise, as a generator's are. The identity model hands it back unchanged.
    from keras_pix2pix.labels import CITYSCAPES_PALETTE, NO_CLASS

    blocks = np.array([[0, 13, 10, 0], [13, 19, 0, 10], [10, 0, 19, 13], [0, 10, 13, 0]])
    classes = np.where(blocks == 19, NO_CLASS, blocks).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    colours = np.array([CITYSCAPES_PALETTE.colours[list(CITYSCAPES_PALETTE.classes).index(c)] if c != NO_CLASS
                        else (0, 0, 0) for c in classes.ravel()], np.uint8).reshape(32, 32, 3)
    with open(tmp_path / "street.jpg", "wb") as file:
        file.write(tf.io.encode_jpeg(colours, quality=75).numpy())
    noisy = tf.io.decode_jpeg(tf.io.read_file(str(tmp_path / "street.jpg"))).numpy()
    assert np.abs(noisy.astype(int) - colours).max() > 10  # the noise is there to be snapped away
    status, out, _ = run_command(capsys, "predict", "--model", identity_model, tmp_path / "street.jpg", "--output",
                                 tmp_path / "out", "--palette", "cityscapes", "--sizing", "resize", "--mode", "export")
    assert status == 0 and "wrote 1 label map(s) snapped to cityscapes" in out
    assert sorted(os.listdir(tmp_path / "out")) == ["street.png", "street_classes.png"]
    snapped = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out" / "street.png"))).numpy()
    ids = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out" / "street_classes.png"))).numpy()
    assert ids.shape == (32, 32, 1) and ids.dtype == np.uint8
    # Every output colour is a palette colour, and each pixel's id is its colour's class.
    class_of = {tuple(colour): NO_CLASS if index < 0 else index
                for colour, index in zip(CITYSCAPES_PALETTE.colours, CITYSCAPES_PALETTE.classes)}
    assert [class_of[tuple(pixel)] for pixel in snapped.reshape(-1, 3)] == ids.ravel().tolist()
    # JPEG's noise is gone: inside the blocks the map is the clean one (road, car, sky and void,
    # 255); at their borders chroma subsampling smears colours further than any snapping undoes.
    inside = np.zeros((32, 32), bool)
    for row in range(4):
        for column in range(4):
            inside[row * 8 + 2 : row * 8 + 6, column * 8 + 2 : column * 8 + 6] = True
    np.testing.assert_array_equal(ids[..., 0][inside], classes[inside])
    np.testing.assert_array_equal(snapped[inside], colours[inside])
    assert (snapped == colours).all(axis=-1).mean() > 0.8 > (noisy == colours).all(axis=-1).mean()


def test_predict_refuses_an_unknown_palette_before_translating(identity_model, tmp_path, capsys):
    png(tmp_path / "x.png")
    refused(capsys, "--palette must be one of facades, cityscapes, demo or a file of R G B lines; got 'rainbow'",
            "predict", "--model", identity_model, tmp_path / "x.png", "--output", tmp_path / "out", "--palette",
            "rainbow")
    assert not os.path.exists(tmp_path / "out")
