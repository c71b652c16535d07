import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_config, write_ab_folder
from keras_pix2pix import evaluate as evaluate_module
from keras_pix2pix.cli import main
from keras_pix2pix.evaluate import (
    FACADES_PALETTE,
    evaluate,
    feature_distances,
    frechet_distance,
    image_metrics,
    inception_extractor,
    kernel_inception_distance,
    label_confusion,
    label_metrics,
    nearest_palette_index,
)
from keras_pix2pix.train import fit


def test_metrics_equal_hand_computed_values():
    target = np.zeros((16, 16, 3), np.float32)
    output = np.full((16, 16, 3), 0.5, np.float32)  # 0.25 of the [0, 1] range everywhere
    metrics = image_metrics(output, target)
    assert metrics["l1"] == pytest.approx(0.5)
    assert metrics["l1_255"] == pytest.approx(63.75)
    assert metrics["psnr"] == pytest.approx(10 * np.log10(1 / 0.25**2), rel=1e-5)  # 12.04 dB
    # SSIM of two constant images: luminance term only, (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    # (float32 variances of constants are not exactly 0, hence the looser tolerance).
    c1 = 0.01**2
    assert metrics["ssim"] == pytest.approx((2 * 0.75 * 0.5 + c1) / (0.75**2 + 0.5**2 + c1), rel=1e-3)


def test_identical_images_score_perfectly():
    image = np.random.RandomState(0).uniform(-1, 1, (24, 24, 3)).astype(np.float32)
    metrics = image_metrics(image, image)
    assert metrics["l1"] == 0 and metrics["ssim"] == pytest.approx(1.0) and metrics["psnr"] == 100.0
    labels = FACADES_PALETTE[np.random.RandomState(1).randint(0, 12, (24, 24))]
    assert label_metrics(label_confusion(labels, labels, FACADES_PALETTE)) == {
        "pixel_accuracy": 1.0,
        "class_accuracy": 1.0,
        "mean_iou": 1.0,
    }


def test_palette_mapping_is_exact_for_palette_colours_and_nearest_otherwise():
    indices = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(nearest_palette_index(FACADES_PALETTE[indices], FACADES_PALETTE), indices)
    # A JPEG-blurred colour goes to its nearest palette entry.
    assert nearest_palette_index(np.array([[[10, 80, 250]]]), FACADES_PALETTE)[0, 0] == 2


def test_label_metrics_by_hand():
    # Two classes: target [0 0 1 1], output [0 1 1 1] -> pixel accuracy 3/4, class accuracies
    # 1/2 and 2/2, IoUs 1/2 (class 0: 1 of 2) and 2/3 (class 1: 2 of 3).
    palette = np.array([(0, 0, 0), (255, 255, 255)], np.uint8)
    target = palette[np.array([[0, 0, 1, 1]])]
    output = palette[np.array([[0, 1, 1, 1]])]
    metrics = label_metrics(label_confusion(output, target, palette))
    assert metrics["pixel_accuracy"] == pytest.approx(0.75)
    assert metrics["class_accuracy"] == pytest.approx(0.75)
    assert metrics["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_frechet_and_kernel_distances_by_hand():
    random = np.random.RandomState(0)
    features = random.normal(size=(200, 4))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, means apart by 3 along one axis: FID = 9.
    assert frechet_distance(features, features + np.array([3.0, 0, 0, 0])) == pytest.approx(9.0, rel=1e-6)
    assert abs(kernel_inception_distance(features, random.normal(size=(200, 4)))) < 0.05
    assert kernel_inception_distance(features, features + 3.0) > 1.0


def test_fid_code_path_runs_on_untrained_inception():
    # Random weights: this checks the plumbing only; these numbers are not FID.
    extractor = inception_extractor(weights=None)
    real = np.random.RandomState(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    fake = np.random.RandomState(1).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    distance, kid = feature_distances(real, fake, extractor)
    assert np.isfinite(distance) and distance >= 0 and np.isfinite(kid)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = write_ab_folder(tmp_path_factory.mktemp("pairs"), count=3, splits=("train", "val", "test"))
    workdir = str(tmp_path_factory.mktemp("run"))
    fit(tiny_config(dataset=folder, steps=2), workdir, verbose=False)
    return workdir, folder


def test_evaluate_writes_metrics_and_a_sortable_page(trained, tmp_path, capsys):
    workdir, folder = trained
    assert main(["evaluate", "--model", workdir, "--split", "test", "--output", str(tmp_path / "report")]) == 0
    assert "evaluated 3/3 pairs" in capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["summary"]["pairs"] == 3 and len(report["images"]) == 3
    assert set(report["images"][0]["metrics"]) == {"l1", "l1_255", "psnr", "ssim"}
    assert report["summary"]["l1"] == pytest.approx(np.mean([row["metrics"]["l1"] for row in report["images"]]))
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count('alt="output"') == 3 and "addEventListener" in page and "http" not in page
    for row in report["images"]:
        for role in ("input", "output", "target"):
            assert (tmp_path / "report" / row["files"][role]).exists()


def test_label_metrics_when_the_target_is_a_label_map(tmp_path, demo_data_dir):
    # Photo -> labels on the demo data: the demo palette applies to the targets.
    workdir = str(tmp_path / "run")
    fit(tiny_config(dataset="demo", data_dir=demo_data_dir, direction="AtoB", steps=1), workdir, verbose=False)
    summary = evaluate(workdir, str(tmp_path / "report"), split="val", data_dir=demo_data_dir, mode="export", verbose=False)
    assert summary["pairs"] == 40
    for key in ("pixel_accuracy", "class_accuracy", "mean_iou", "mean_iou_overall"):
        assert 0 <= summary[key] <= 1


def test_scoring_folders_without_a_model(tmp_path):
    for name in ("a", "b"):
        image = np.random.RandomState(len(name)).randint(0, 256, (32, 32, 3)).astype(np.uint8)
        for folder in ("targets", "predictions"):
            os.makedirs(tmp_path / folder, exist_ok=True)
            tf.io.write_file(str(tmp_path / folder / f"{name}.png"), tf.io.encode_png(image))
    summary = evaluate(
        output_dir=str(tmp_path / "report"), predictions=str(tmp_path / "predictions"), targets=str(tmp_path / "targets"), verbose=False
    )
    assert summary["pairs"] == 2 and summary["l1"] == 0 and summary["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"give --model, or --predictions and --targets folders"):
        evaluate(output_dir=str(tmp_path / "r2"), verbose=False)


def test_fid_without_weights_is_one_line_and_the_rest_is_computed(trained, tmp_path, monkeypatch, capsys):
    workdir, _ = trained

    def offline(weights):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(evaluate_module, "inception_extractor", offline)
    summary = evaluate(workdir, str(tmp_path / "report"), split="val", fid=True)
    output = capsys.readouterr().out
    assert "FID and KID skipped: InceptionV3 weights (imagenet) could not be loaded: URL fetch failure" in output
    assert "fid" not in summary and "l1" in summary


def test_bad_arguments(trained, tmp_path, capsys):
    workdir, _ = trained
    assert main(["evaluate", "--model", workdir, "--split", "holdout", "--output", str(tmp_path)]) == 2
    assert "has no holdout/ split; it has train, val, test" in capsys.readouterr().err
    assert main(["evaluate", "--model", workdir, "--palette", "rainbow", "--output", str(tmp_path)]) == 2
    assert "palette must be one of facades, cityscapes, demo or a file" in capsys.readouterr().err
