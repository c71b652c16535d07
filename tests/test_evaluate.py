import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import SHARED_DATA, png, refused, tiny_config, write_ab_folder

from keras_pix2pix import evaluation as evaluate_module
from keras_pix2pix.cli import main
from keras_pix2pix.evaluation import evaluate
from keras_pix2pix.labels import DEMO_PALETTE, FACADES_PALETTE
from keras_pix2pix.metrics import (
    feature_distances,
    frechet_distance,
    image_metrics,
    inception_extractor,
    kernel_inception_distance,
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


def _flat_label_pixels(folder, count=30):
    """Label-map pixels of the facades release that lie inside a region of one colour.

    The maps are JPEGs: next to a border the colours are blurred, inside a region they hold.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    pixels = []
    for name in sorted(os.listdir(folder))[:count]:
        image = tf.io.decode_jpeg(tf.io.read_file(os.path.join(folder, name))).numpy().astype(np.int32)
        labels = image[:, image.shape[1] // 2 :]
        windows = sliding_window_view(labels, (5, 5), axis=(0, 1))
        spread = (windows.max(axis=(-2, -1)) - windows.min(axis=(-2, -1))).max(axis=-1)
        pixels.append(labels[2:-2, 2:-2][spread <= 6])
    return np.concatenate(pixels)


def _palette_fit(pixels, colours):
    """(share of pixels within 12 of a palette colour, pixels per palette colour)."""
    distances = np.sqrt(((pixels[:, None, :] - np.asarray(colours, np.int32)[None]) ** 2).sum(axis=-1))
    return float((distances.min(axis=1) <= 12).mean()), np.bincount(distances.argmin(axis=1), minlength=len(colours))


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "facades")), reason="needs ../shared/data/facades")
def test_facades_palette_gives_each_label_colour_of_the_real_maps_its_own_class():
    pixels = _flat_label_pixels(os.path.join(SHARED_DATA, "facades", "val"))
    within, counts = _palette_fit(pixels, FACADES_PALETTE.colours)
    # Every label colour of the dataset has its own entry (a colour without one, or two sharing
    # one, would leave its pixels far from every entry), and no entry is left without pixels.
    assert within > 0.99, within
    assert (counts > 0.0005 * len(pixels)).all(), counts
    # The jet(12) palette the package had before fails the same check.
    jet12 = [(0, 0, 170), (0, 0, 255), (0, 85, 255), (0, 170, 255), (0, 255, 255), (85, 255, 170),
             (170, 255, 85), (255, 255, 0), (255, 170, 0), (255, 85, 0), (255, 0, 0), (170, 0, 0)]
    assert _palette_fit(pixels, jet12)[0] < 0.5


def test_frechet_and_kernel_distances_by_hand():
    random = np.random.RandomState(0)
    features = random.normal(size=(200, 4))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, means apart by 3 along one axis: FID = 9.
    assert frechet_distance(features, features + np.array([3.0, 0, 0, 0])) == pytest.approx(9.0, rel=1e-6)
    assert abs(kernel_inception_distance(features, random.normal(size=(200, 4)))) < 0.05
    assert kernel_inception_distance(features, features + 3.0) > 1.0


@pytest.mark.slow
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
    assert "evaluated 3/3" in capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["summary"]["pairs"] == 3 and len(report["images"]) == 3
    assert set(report["images"][0]["metrics"]) == {"l1", "l1_255", "psnr", "ssim"}
    assert report["summary"]["l1"] == pytest.approx(np.mean([row["metrics"]["l1"] for row in report["images"]]))
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count('alt="output"') == 3 and "addEventListener" in page and "http" not in page
    for row in report["images"]:
        for role in ("input", "output", "target"):
            assert (tmp_path / "report" / row["files"][role]).exists()


@pytest.mark.slow
def test_label_metrics_when_the_target_is_a_label_map(tmp_path, demo_data_dir):
    # Photo -> labels on the demo data: the demo palette applies to the targets.
    workdir = str(tmp_path / "run")
    fit(tiny_config(dataset="demo", data_dir=demo_data_dir, direction="AtoB", steps=1), workdir, verbose=False)
    summary = evaluate(workdir, str(tmp_path / "report"), split="val", data_dir=demo_data_dir, mode="export", verbose=False)
    assert summary["pairs"] == 40
    for key in ("pixel_accuracy", "class_accuracy", "mean_iou", "image_mean_mean_iou"):
        assert 0 <= summary[key] <= 1
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [row["name"] for row in report["classes"]] == list(DEMO_PALETTE.names)
    assert np.sum(report["confusion"]) == sum(row["pixels"] for row in report["classes"]) > 0
    assert (tmp_path / "report" / "confusion.png").stat().st_size > 1000
    assert 'id="classes"' in (tmp_path / "report" / "index.html").read_text()


def test_scoring_folders_without_a_model(tmp_path):
    for name in ("a", "b"):
        image = np.random.RandomState(len(name)).randint(0, 256, (32, 32, 3)).astype(np.uint8)
        for folder in ("targets", "predictions"):
            os.makedirs(tmp_path / folder, exist_ok=True)
            tf.io.write_file(str(tmp_path / folder / f"{name}.png"), tf.io.encode_png(image))
    summary = evaluate(
        output_dir=str(tmp_path / "report"),
        predictions=str(tmp_path / "predictions"),
        targets=str(tmp_path / "targets"),
        verbose=False,
    )
    assert summary["pairs"] == 2 and summary["l1"] == 0 and summary["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"give --model, or --predictions and --targets folders"):
        evaluate(output_dir=str(tmp_path / "r2"), verbose=False)


def test_fid_without_weights_stops_before_anything_is_scored(trained, tmp_path, monkeypatch):
    workdir, _ = trained

    def offline(weights):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(evaluate_module, "inception_extractor", offline)
    # Asked for FID, it fails (tests/test_refusals.py has the command line's lines and statuses).
    with pytest.raises(OSError, match=r"the download of InceptionV3's ImageNet weights .* failed: URL fetch failure"):
        evaluate(workdir, str(tmp_path / "report"), split="val", fid=True)
    assert not os.path.exists(tmp_path / "report")


def test_bad_arguments(trained, tmp_path, capsys):
    workdir, _ = trained
    assert main(["evaluate", "--model", workdir, "--split", "holdout", "--output", str(tmp_path)]) == 2
    assert "has no holdout/ split; it has train, val, test" in capsys.readouterr().err
    assert main(["evaluate", "--model", workdir, "--palette", "rainbow", "--output", str(tmp_path)]) == 2
    assert "palette must be one of facades, cityscapes, demo or a file" in capsys.readouterr().err


def test_fid_is_named_for_the_network_that_computed_it(trained, tmp_path, monkeypatch):
    workdir, _ = trained
    # A stand-in feature network: this checks the names and the note, not the numbers.
    monkeypatch.setattr(
        evaluate_module, "inception_extractor", lambda weights: lambda images: np.asarray(images).reshape(len(images), -1)[:, :6]
    )
    summary = evaluate(workdir, str(tmp_path / "report"), split="val", fid=True, verbose=False)
    assert {"fid_keras_inceptionv3", "kid_keras_inceptionv3"} <= set(summary) and "fid" not in summary
    assert "not comparable with published FIDs" in summary["fid_network"]
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())["summary"]
    assert saved["fid_network"] == summary["fid_network"]
    assert "not comparable with published FIDs" in (tmp_path / "report" / "index.html").read_text()


# --- a corrupt prediction ---------------------------------------------------------------------------


def test_a_corrupt_prediction_is_named_by_evaluate(tmp_path, capsys):
    for folder in ("predictions", "targets"):
        (tmp_path / folder).mkdir()
        png(tmp_path / folder / "a.png")
    (tmp_path / "predictions" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    png(tmp_path / "targets" / "b.png")
    refused(capsys, r"predictions/b\.png is not a readable JPEG or PNG image", "evaluate", "--predictions",
            tmp_path / "predictions", "--targets", tmp_path / "targets", "--output", tmp_path / "report")
