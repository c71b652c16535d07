import json
import os

import pytest
from conftest import TINY, refused

from keras_pix2pix.config import Config, parse_size


def test_defaults_are_the_papers():
    config = Config()
    assert config.image_size == (256, 256) and config.resolved_load_size == (286, 286)
    assert (config.learning_rate, config.beta_1, config.beta_2) == (2e-4, 0.5, 0.999)
    assert config.lambda_l1 == 100 and config.batch_size == 1 and config.dropout == 0.5
    assert config.discriminator_layers == 3 and config.norm == "batch" and config.gan_loss == "vanilla"


def test_load_size_scales_with_the_image_size():
    assert Config(image_size=64).resolved_load_size == (72, 72)
    assert Config(image_size=(128, 256)).resolved_load_size == (143, 286)


def test_a_changed_image_size_never_carries_a_derived_load_size():
    # The defaults' 286 must not survive a copy with another image size (the CLI builds its
    # settings by copying), nor a larger size fail against a smaller size's load size.
    assert Config().replace(image_size=64).resolved_load_size == (72, 72)
    assert Config(image_size=64).replace(image_size=128).resolved_load_size == (143, 143)
    assert Config(image_size=64, load_size=80).replace(seed=1).resolved_load_size == (80, 80)
    with pytest.raises(ValueError, match=r"load_size must be at least image_size \(128, 128\)"):
        Config(image_size=64, load_size=80).replace(image_size=128)


def test_json_round_trip(tmp_path):
    config = Config(image_size=(64, 128), steps=10, seed=3)
    config.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["image_size"] == [64, 128]
    assert Config.load(tmp_path / "config.json") == config


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(direction="AtoC"), r"direction must be one of AtoB, BtoA; got 'AtoC'"),
        (dict(norm="layer"), r"norm must be one of batch, instance, none; got 'layer'"),
        (dict(batch_size=0), r"batch_size must be an integer >= 1; got 0"),
        (dict(steps=10, epochs=2), r"give steps or epochs, not both"),
        (dict(image_size=64, load_size=32), r"load_size must be at least image_size \(64, 64\)"),
        (dict(lambda_l1=-1.0), r"lambda_l1 must be a number >= 0.0; got -1.0"),
        (dict(learning_rate=0), r"learning_rate must be a number > 0.0; got 0"),
        (dict(input_channels=2), r"input_channels must be one of 1, 3; got 2"),
        (dict(discriminator_layers=9), r"discriminator_layers must be an integer between 0 and 8; got 9"),
        (dict(gan_loss="hinge"), r"gan_loss must be one of vanilla, lsgan; got 'hinge'"),
        (dict(seed=-1), r"seed must be an integer between 0 and 2147483647; got -1"),
    ],
)
def test_invalid_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        Config(**changes)


def test_unknown_keys_in_saved_config_are_refused():
    with pytest.raises(ValueError, match=r"unknown setting\(s\) colour"):
        Config.from_dict({"colour": "red"})


def test_parse_size():
    assert parse_size("32x64") == (32, 64)
    assert parse_size(16) == (16, 16)
    with pytest.raises(ValueError, match=r"image_size must be a positive size .* got '0x4'"):
        parse_size("0x4")


# --- impossible sizes and lengths on the command line -----------------------------------------------


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--image-size", "1", "--discriminator-layers", "0"], r"image_size must be at least 2 on each side"),
        (["--image-size", "100"], r"image_size must be a multiple of 2\*\*depth = 64 on each side"),
        (["--steps", str(2**64)], r"steps must be an integer between 1 and 9007199254740992; got 18446744073709551616"),
        (["--epochs", "1e300"], r"epochs must be a number > 0\.0 and <= 9\.0072e\+15"),
    ],
)
def test_impossible_sizes_and_lengths_are_named(trained, tmp_path, capsys, flags, pattern):
    refused(capsys, pattern, "fit", "--dataset", trained[0], "--workdir", tmp_path / "run", *TINY, *flags)
    assert not os.path.exists(tmp_path / "run" / "config.json")
