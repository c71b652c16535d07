import numpy as np
import pytest

from keras_pix2pix.labels import (
    CITYSCAPES_PALETTE,
    FACADES_PALETTE,
    NO_CLASS,
    LabelPalette,
    image_label_scores,
    label_confusion,
    label_scores,
    nearest_palette_index,
    palette_named,
    per_class_scores,
    snap,
)

ROAD, SIDEWALK, CAR, SKY = (128, 64, 128), (244, 35, 232), (0, 0, 142), (70, 130, 180)
VOID, GROUND = (0, 0, 0), (81, 0, 81)
TRAIN_ID = {ROAD: 0, SIDEWALK: 1, SKY: 10, CAR: 13}


# The authors' definitions, as scripts/eval_cityscapes/evaluate.py and util.py of
# junyanz/pytorch-CycleGAN-and-pix2pix have them (a: target train ids, 255 ignored; b: outputs).
def fast_hist(a, b, n):
    k = np.where((a >= 0) & (a < n))[0]
    bc = np.bincount(n * a[k].astype(int) + b[k], minlength=n**2)
    if len(bc) != n**2:
        return 0
    return bc.reshape(n, n)


def get_scores(hist):
    acc = np.diag(hist).sum() / (hist.sum() + 1e-12)
    cl_acc = np.diag(hist) / (hist.sum(1) + 1e-12)
    iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist) + 1e-12)
    return acc, np.nanmean(cl_acc), np.nanmean(iu), cl_acc, iu


def _hand_made():
    """Target and output label maps of 12 pixels, JPEG-like noise on some, and their train ids."""
    target = [ROAD, ROAD, ROAD, ROAD, SIDEWALK, SIDEWALK, SKY, SKY, VOID, VOID, GROUND, CAR]
    # road: 3 of 4 hit, 1 taken for sidewalk; sidewalk: both taken for road (never predicted right);
    # sky: both hit; void and ground: ignored whatever is drawn there; car: taken for sky.
    # Cars are never predicted; no target pixel is terrain, yet one void pixel is drawn as terrain.
    output = [ROAD, ROAD, ROAD, SIDEWALK, ROAD, ROAD, SKY, SKY, (152, 251, 152), CAR, ROAD, SKY]
    noise = np.array([[3, -4, 2]] * 12)
    noisy_target = np.clip(np.array(target) + noise, 0, 255).astype(np.uint8)[None]
    noisy_output = np.clip(np.array(output) - noise, 0, 255).astype(np.uint8)[None]
    truth = np.array([TRAIN_ID.get(colour, 255) for colour in target])
    predicted = np.array([TRAIN_ID.get(colour, 9) for colour in output])  # terrain's train id is 9
    return noisy_output, noisy_target, truth, predicted


def test_confusion_of_a_hand_made_image_is_counted_as_fast_hist_counts_it():
    output, target, truth, predicted = _hand_made()
    confusion = label_confusion(output, target, CITYSCAPES_PALETTE)
    expected = np.zeros((19, 19), np.int64)
    for row, column, count in ((0, 0, 3), (0, 1, 1), (1, 0, 2), (10, 10, 2), (13, 10, 1)):
        expected[row, column] = count
    np.testing.assert_array_equal(confusion, expected)
    np.testing.assert_array_equal(confusion, fast_hist(truth, predicted, 19))


def test_scores_match_the_authors_get_scores_and_a_hand_computation():
    output, target, truth, predicted = _hand_made()
    confusion = label_confusion(output, target, CITYSCAPES_PALETTE)
    scores = label_scores(confusion)
    accuracy, class_accuracy, iou, per_class_accuracy, per_class_iou = get_scores(fast_hist(truth, predicted, 19))
    assert scores["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert scores["class_accuracy"] == pytest.approx(class_accuracy, abs=1e-12)
    assert scores["mean_iou"] == pytest.approx(iou, abs=1e-12)
    np.testing.assert_allclose(per_class_scores(confusion), (per_class_accuracy, per_class_iou), rtol=0, atol=1e-12)
    # By hand: 5 hits of 9 evaluated pixels. Class accuracies road 3/4, sidewalk 0, sky 1, car 0
    # and 0 for the 15 classes with no target pixel, over all 19. IoUs: road 3 / (4 + 5 - 3),
    # sidewalk 0, sky 2 / (2 + 3 - 2), car 0 (never predicted), terrain 0 (predicted on a void
    # pixel only: ignored, so not a false positive), over all 19.
    assert scores["pixel_accuracy"] == pytest.approx(5 / 9, abs=1e-12)
    assert scores["class_accuracy"] == pytest.approx((3 / 4 + 1) / 19, abs=1e-12)
    assert scores["mean_iou"] == pytest.approx((3 / 6 + 2 / 3) / 19, abs=1e-12)


def test_a_class_predicted_on_an_evaluated_pixel_but_absent_from_the_targets_lowers_the_iou():
    target = np.array([[ROAD, ROAD]], np.uint8)
    output = np.array([[ROAD, CAR]], np.uint8)
    scores = label_scores(label_confusion(output, target, CITYSCAPES_PALETTE))
    accuracy, iou = per_class_scores(label_confusion(output, target, CITYSCAPES_PALETTE))
    assert iou[0] == pytest.approx(1 / 2) and iou[13] == 0 and accuracy[13] == 0
    assert scores["mean_iou"] == pytest.approx(0.5 / 19, abs=1e-12)


def test_void_targets_are_ignored_and_outputs_take_the_nearest_evaluated_class():
    target = np.array([[ROAD, ROAD, VOID, GROUND]], np.uint8)
    # Whatever is drawn on void and ground pixels does not count; a road pixel drawn in ground's
    # colour is taken for its nearest evaluated class (bicycle, 119 11 32), as every output pixel
    # is an answer: a miss.
    output = np.array([[ROAD, GROUND, CAR, SKY]], np.uint8)
    confusion = label_confusion(output, target, CITYSCAPES_PALETTE)
    assert confusion.sum() == 2 and confusion[0, 0] == 1 and confusion[0, 18] == 1


def test_per_image_scores_leave_out_the_classes_an_image_does_not_hold():
    palette = LabelPalette.of([("black", (0, 0, 0), True), ("white", (255, 255, 255), True),
                               ("grey", (128, 128, 128), True)])
    target = palette.colours[np.array([[0, 0, 1, 1]])]
    output = palette.colours[np.array([[0, 1, 1, 1]])]
    confusion = label_confusion(output, target, palette)
    # Over the two classes present: class accuracies 1/2 and 2/2, IoUs 1/2 and 2/3.
    assert image_label_scores(confusion) == pytest.approx(
        {"pixel_accuracy": 0.75, "class_accuracy": 0.75, "mean_iou": (1 / 2 + 2 / 3) / 2})
    # The paper's statistic counts grey, absent from both, as 0.
    assert label_scores(confusion)["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 3)


def test_palette_colours_map_to_themselves_and_blurred_colours_to_the_nearest():
    indices = np.arange(12).reshape(3, 4)
    colours = FACADES_PALETTE.colours
    np.testing.assert_array_equal(nearest_palette_index(colours[indices], colours), indices)
    assert nearest_palette_index(np.array([[[10, 120, 250]]]), colours)[0, 0] == 2  # window, 0 128 255
    # Large images are mapped a few rows at a time, with the same result.
    image = np.random.RandomState(0).randint(0, 256, (50, 7, 3)).astype(np.uint8)
    np.testing.assert_array_equal(nearest_palette_index(image, colours, rows_at_once=3),
                                  nearest_palette_index(image, colours))


def test_snap_gives_exact_colours_and_train_ids_with_255_for_colours_not_evaluated():
    image = np.array([[[125, 66, 131], [2, 3, 139]], [[3, 2, 1], [79, 2, 83]]], np.uint8)
    colours, classes = snap(image, CITYSCAPES_PALETTE)
    np.testing.assert_array_equal(colours, [[ROAD, CAR], [VOID, GROUND]])
    np.testing.assert_array_equal(classes, [[0, 13], [NO_CLASS, NO_CLASS]])
    assert classes.dtype == np.uint8


def test_palette_files_and_names_are_checked(tmp_path):
    assert palette_named("facades") is FACADES_PALETTE
    with pytest.raises(Exception, match="palette must be one of facades, cityscapes, demo or a file of R G B lines; "
                                        "got 'rainbow'"):
        palette_named("rainbow")
    (tmp_path / "two.txt").write_text("# R G B\n0 0 0\n255 255 255\n")
    assert palette_named(str(tmp_path / "two.txt")).names == ("class 0", "class 1")
    (tmp_path / "bad.txt").write_text("0 0 300\n")
    with pytest.raises(Exception, match="--palette file .* must hold lines of three numbers 0-255"):
        palette_named(str(tmp_path / "bad.txt"), "--palette")
