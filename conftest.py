"""Names the docstring examples of keras_pix2pix use (pytest --doctest-modules keras_pix2pix).

Examples that train, translate, evaluate or export work on a tiny dataset and run made here, in a
temporary folder: nothing is written to the working directory or downloaded.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def _doctest_files(tmp_path_factory):
    import tensorflow as tf

    import keras_pix2pix

    root = tmp_path_factory.mktemp("doctest")
    os.environ["KERAS_PIX2PIX_DATA_DIR"] = str(root / "data_dir")
    random = np.random.RandomState(0)
    for split in ("train", "val"):
        os.makedirs(root / "pairs" / split)
        for index in range(2):
            image = random.randint(0, 256, (32, 64, 3)).astype(np.uint8)
            tf.io.write_file(str(root / "pairs" / split / f"{index}.png"), tf.io.encode_png(image))
    for folder in ("outputs", "targets"):
        os.makedirs(root / folder)
        for index in range(2):
            image = np.full((32, 32, 3), 60 * index, np.uint8)
            tf.io.write_file(str(root / folder / f"{index}.png"), tf.io.encode_png(image))
    workdir = str(root / "trained")
    keras_pix2pix.fit(
        dataset=str(root / "pairs"), image_size=32, generator_filters=4, discriminator_filters=4,
        discriminator_layers=1, steps=2, seed=0, workdir=workdir, verbose=False,
    )
    return {
        "tmp": str(root / "scratch"),
        "pairs_folder": str(root / "pairs"),
        "image_file": str(root / "targets" / "1.png"),
        "workdir": workdir,
        "model_file": os.path.join(workdir, "generator.keras"),
        "export_folder": str(root / "exports"),
        "outputs_folder": str(root / "outputs"),
        "targets_folder": str(root / "targets"),
        "report_folder": str(root / "report"),
        # A junyanz U-Net state_dict made by real PyTorch (tests/fixtures/pytorch/make_checkpoints.py).
        "pytorch_checkpoint": os.path.join(os.path.dirname(__file__), "tests", "fixtures", "pytorch", "unet_batch_zip.pth"),
    }


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace):
    if isinstance(request.node, pytest.DoctestItem):
        doctest_namespace.update(request.getfixturevalue("_doctest_files"))
