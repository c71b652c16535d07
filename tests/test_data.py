import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config, write_ab_folder

from keras_pix2pix import data, datasets, demo


def _ab_image(height=8, width=8):
    left = np.full((height, width, 3), 0.25, np.float32)
    right = np.full((height, width, 3), 0.75, np.float32)
    return tf.constant(np.concatenate([left, right], axis=1))


def test_split_pair_follows_the_direction():
    source, target = data.split_pair(_ab_image(), "AtoB")
    assert float(tf.reduce_mean(source)) == 0.25 and float(tf.reduce_mean(target)) == 0.75
    source, target = data.split_pair(_ab_image(), "BtoA")
    assert float(tf.reduce_mean(source)) == 0.75 and float(tf.reduce_mean(target)) == 0.25
    with pytest.raises(ValueError, match=r"direction must be one of AtoB, BtoA; got 'AB'"):
        data.split_pair(_ab_image(), "AB")


def test_jitter_crops_and_flips_input_and_target_together():
    image = tf.random.uniform((40, 40, 3), seed=1)
    for seed in range(8):
        source, target = data.jitter(
            image, image, tf.constant([seed, 0], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=True
        )
        assert source.shape == (32, 32, 3)
        np.testing.assert_array_equal(source.numpy(), target.numpy())
    # Different seeds give different crops.
    crops = {
        data.jitter(image, image, tf.constant([seed, 0], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=True)[0]
        .numpy()
        .tobytes()
        for seed in range(8)
    }
    assert len(crops) > 1


def test_training_stream_is_a_function_of_seed_and_position(tmp_path):
    folder = write_ab_folder(tmp_path / "pairs", count=5)
    files = datasets.local_splits(folder).train
    config = tiny_config(batch_size=2)
    first = [batch[0].numpy() for batch in data.train_dataset(files, config, "AtoB", seed=3).take(6)]
    again = [batch[0].numpy() for batch in data.train_dataset(files, config, "AtoB", seed=3).take(6)]
    later = [batch[0].numpy() for batch in data.train_dataset(files, config, "AtoB", seed=3, start_example=6).take(3)]
    other = [batch[0].numpy() for batch in data.train_dataset(files, config, "AtoB", seed=4).take(6)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first[3:], later):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    assert first[0].shape == (2, 32, 32, 3)
    assert first[0].min() >= -1 and first[0].max() <= 1


def test_each_epoch_visits_every_file_once(tmp_path):
    folder = tmp_path / "pairs" / "train"
    folder.mkdir(parents=True)
    for index in range(4):
        # The left half's colour identifies the file.
        image = np.zeros((8, 16, 3), np.uint8)
        image[:, :8] = 40 * (index + 1)
        tf.io.write_file(str(folder / f"{index}.png"), tf.io.encode_png(image))
    files = datasets.local_splits(str(tmp_path / "pairs")).train
    config = tiny_config(image_size=8, load_size=8, flip=False)
    seen = [
        int(round(float(batch[0][0, 0, 0, 0] + 1) * 127.5))
        for batch in data.train_dataset(files, config, "AtoB", seed=0).take(8)
    ]
    assert sorted(seen[:4]) == sorted(seen[4:]) == [40, 80, 120, 160]


def _write(path, array, sixteen_bits=False):
    encoded = tf.io.encode_png(tf.constant(array, tf.uint16 if sixteen_bits else tf.uint8))
    tf.io.write_file(str(path), encoded)


@pytest.mark.parametrize("kind", ["gray", "rgba", "uint16"])
def test_image_kinds_are_converted(tmp_path, kind):
    if kind == "gray":
        array, sixteen = np.full((8, 16, 1), 200, np.uint8), False
    elif kind == "rgba":
        array, sixteen = np.concatenate([np.full((8, 16, 3), 200, np.uint8), np.zeros((8, 16, 1), np.uint8)], -1), False
    else:
        array, sixteen = np.full((8, 16, 3), 200 * 257, np.uint16), True
    _write(tmp_path / "pair.png", array, sixteen)
    # As training reads it: the source's bytes, decoded and split by data.decode_pair.
    _, a_bytes, b_bytes = next(iter(datasets.FilePairs((str(tmp_path / "pair.png"),), ("",)).ordered()))
    source, target = data.decode_pair(a_bytes, b_bytes, "AtoB", input_channels=3, output_channels=1)
    assert source.shape == (8, 8, 3) and target.shape == (8, 8, 1)
    np.testing.assert_allclose(source.numpy(), 200 / 255, atol=1e-3)


def test_local_folder_with_splits_and_without(tmp_path):
    with_splits = write_ab_folder(tmp_path / "split", count=2, splits=("train", "test"))
    splits = datasets.local_splits(with_splits)
    assert len(splits.train) == 2 and splits.validation.a[0].endswith(os.path.join("test", "0.png"))
    flat = tmp_path / "flat"
    write_ab_folder(flat, count=3, splits=(".",), extension="jpg")
    splits = datasets.local_splits(str(flat))
    assert len(splits.train) == 3 and splits.validation == splits.train and splits.direction == "AtoB"


def test_missing_and_empty_folders_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"dataset folder .*nowhere does not exist"):
        datasets.find_dataset(str(tmp_path / "nowhere"))
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no images \(.jpg, .jpeg, .png\) in .*empty.train"):
        datasets.find_dataset(str(tmp_path / "empty"))


@pytest.mark.slow
def test_demo_pairs_are_label_maps_of_the_palette_and_photos(demo_data_dir):
    splits = datasets.find_dataset("demo", demo_data_dir)
    assert (len(splits.train), len(splits.validation), splits.direction) == (200, 40, "BtoA")
    image = tf.io.decode_png(tf.io.read_file(splits.train.a[0])).numpy()
    assert image.shape == (256, 512, 3)
    labels = image[:, 256:].reshape(-1, 3)
    colours = {tuple(colour) for colour in np.unique(labels, axis=0)}
    palette = {tuple(colour) for colour in demo.PALETTE}
    assert colours <= palette and len(colours) >= 5
    photo = image[:, :256]
    assert photo.std() > 20  # a rendered photo, not flat colours
    # Same pair, same bytes: the dataset is generated deterministically.
    np.testing.assert_array_equal(demo.pair(0), image)


def _stripes(size=600):
    """1-pixel black and white columns: all detail, no content at the sizes a model sees."""
    image = np.zeros((size, size, 3), np.uint8)
    image[:, 1::2] = 255
    return image


def _pil_std(image, size, back=None):
    """The std of PIL's bicubic shrink (as the paper's code resizes), optionally enlarged back."""
    from PIL import Image

    resized = Image.fromarray(image).resize(size[::-1], Image.BICUBIC)
    if back:
        resized = resized.resize(back[::-1], Image.BICUBIC)
    return np.asarray(resized, np.float64).std() / 255


def _aliasing_bound(pil_std):
    # PIL leaves about 0.006 on the shrink to 286; unfiltered sampling leaves about 0.35.
    return max(3 * pil_std, 0.02)


def test_training_pipeline_shrinks_without_aliasing():
    stripes = tf.constant(_stripes(), tf.float32) / 255
    source, _ = data.jitter(
        stripes, stripes, tf.constant([1, 2], tf.int64), image_size=(256, 256), load_size=(286, 286), flip=False
    )
    assert float(tf.math.reduce_std(source)) <= _aliasing_bound(_pil_std(_stripes(), (286, 286)))


def test_predict_and_the_saved_model_shrink_without_aliasing(tmp_path):
    import keras

    from keras_pix2pix.exports import write_saved_model
    from keras_pix2pix.translation import predict

    # An identity "generator": what comes out is what the model saw, enlarged back to 600x600.
    identity = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Identity()], name="identity")
    identity.save(tmp_path / "identity.keras")
    path = tmp_path / "stripes.png"
    tf.io.write_file(str(path), tf.io.encode_png(_stripes()))
    bound = _aliasing_bound(_pil_std(_stripes(), (64, 64), back=(600, 600)))

    # sizing="resize": the path that shrinks (the default tiles an image larger than the model's size).
    [written] = predict(str(tmp_path / "identity.keras"), [str(path)], str(tmp_path / "out"), mode="inference",
                        sizing="resize")
    output = tf.io.decode_png(tf.io.read_file(written)).numpy()
    assert output.shape == (600, 600, 3)
    assert output.std() / 255 <= bound

    write_saved_model(identity, str(tmp_path / "saved_model"))
    serve = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["translate_bytes"]
    contents = tf.io.read_file(str(path)).numpy()
    served = serve(image_bytes=tf.constant([contents]), sizing=tf.constant(["resize"]))["output_bytes"][0]
    output = tf.io.decode_png(served).numpy()
    assert output.shape == (600, 600, 3)
    assert output.std() / 255 <= bound
