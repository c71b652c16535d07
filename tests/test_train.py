import json
import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import refused, tiny_config, write_ab_folder

from keras_pix2pix import data, datasets, fast, models, train
from keras_pix2pix.modes import translate
from keras_pix2pix.optimization import learning_rate_at
from keras_pix2pix.train import fit, make_optimizers, make_train_step, run_length
from keras_pix2pix.translation import load_generator


def _weights(model):
    return [variable.numpy().copy() for variable in model.trainable_variables]


def test_one_train_step_changes_both_models():
    config = tiny_config()
    keras.utils.set_random_seed(0)
    generator, discriminator = models.build_models(config)
    generator_optimizer, discriminator_optimizer = make_optimizers(config, 10, 5)
    step = make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config)
    before_generator, before_discriminator = _weights(generator), _weights(discriminator)
    inputs = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=1)
    targets = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=2)
    losses = step(inputs, targets)
    assert set(losses) == {
        "generator_total", "generator_gan", "generator_l1", "discriminator_real", "discriminator_fake", "finite"
    }
    assert bool(losses["finite"])
    changed_generator = [not np.array_equal(a, b) for a, b in zip(before_generator, _weights(generator))]
    changed_discriminator = [not np.array_equal(a, b) for a, b in zip(before_discriminator, _weights(discriminator))]
    assert all(changed_generator), "every generator variable moves in one Adam step"
    assert all(changed_discriminator), "every discriminator variable moves in one Adam step"
    assert int(generator_optimizer.iterations) == int(discriminator_optimizer.iterations) == 1
    # The total is the parts recombined with lambda = 100.
    assert float(losses["generator_total"]) == pytest.approx(
        float(losses["generator_gan"]) + 100 * float(losses["generator_l1"]), rel=1e-5
    )


def test_schedule_is_constant_then_linear_to_zero():
    values = [float(learning_rate_at(step / 200, 2e-4, decay_fraction=100 / 200)) for step in (0, 99, 100, 150, 199, 200)]
    assert values == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4, 2e-6, 0.0], abs=1e-9)
    assert float(learning_rate_at(0.9, 1e-3, decay_fraction=0)) == pytest.approx(1e-3)


def test_steps_schedule_is_bit_identical_to_the_step_counting_one():
    # Earlier versions computed the rate from the optimizer's step: lr * clip((total - step) / decay).
    # Progress step / total must give the same float32 rate, bit for bit (resumed runs compare exactly).
    for total, decay in ((200, 100), (7, 3), (1000, 999), (12345, 6172), (3, 0)):
        for step in range(0, total + 1, max(1, total // 97)):
            remaining = tf.cast(total, tf.float32) - tf.cast(step, tf.float32)
            before = 2e-4 * tf.clip_by_value(remaining / decay, 0.0, 1.0) if decay else tf.constant(2e-4, tf.float32)
            now = learning_rate_at(step / total, 2e-4, decay_fraction=decay / total)
            assert now.numpy().tobytes() == before.numpy().tobytes(), (total, decay, step)
    progress = tf.Variable(0.0, dtype=tf.float64)
    generator_adam, discriminator_adam = make_optimizers(tiny_config(steps=200, decay_steps=100), 200, 100, progress)
    progress.assign(150 / 200)
    assert float(generator_adam.learning_rate) == float(discriminator_adam.learning_rate) == pytest.approx(1e-4)


def test_run_length_from_epochs_and_defaults():
    assert run_length(tiny_config(steps=None, epochs=2, batch_size=4), 10) == (6, 3)
    assert run_length(tiny_config(steps=100, decay_steps=30), 10) == (100, 30)
    assert run_length(tiny_config(steps=None, decay_epochs=1), 400) == (80000, 400)


@pytest.fixture
def ab_dataset(tmp_path):
    return write_ab_folder(tmp_path / "pairs", count=3)


def test_workdir_holds_every_artifact(tmp_path, ab_dataset):
    workdir = tmp_path / "run"
    fit(tiny_config(dataset=ab_dataset, steps=4), str(workdir), verbose=False)
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["steps"] == 4 and saved["seed"] == 7 and saved["direction"] == "AtoB"
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-4")
    assert sorted(os.listdir(workdir / "samples")) == ["step_0000002.png", "step_0000004.png"]
    grid = tf.io.decode_png(tf.io.read_file(str(workdir / "samples" / "step_0000004.png")))
    # Two pairs, three 32 px columns with 2 px borders.
    assert grid.shape == (2 * 36, 3 * 34 + 2, 3)
    events = tf.data.TFRecordDataset(tf.io.gfile.glob(str(workdir / "logs" / "events*")))
    tags = set()
    for record in events:
        event = tf.compat.v1.Event.FromString(record.numpy())
        tags.update(value.tag for value in event.summary.value)
    assert {"losses/generator_l1", "losses/discriminator_fake", "learning_rate", "samples"} <= tags
    assert (workdir / "generator.keras").exists()
    assert not [name for name in os.listdir(workdir) if ".tmp-" in name]


@pytest.mark.slow
def test_resume_continues_at_the_saved_step_with_the_same_state(tmp_path, ab_dataset, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(tiny_config(dataset=ab_dataset, steps=6, save_every=3), str(straight), verbose=False)
    fit(tiny_config(dataset=ab_dataset, steps=3, save_every=3), str(resumed), verbose=False)
    capsys.readouterr()
    generator = fit(tiny_config(dataset=ab_dataset, steps=6, save_every=3), str(resumed))
    output = capsys.readouterr().out
    assert f"resuming {resumed} at step 3 of 6" in output
    assert "note: steps changed from 3 (saved config.json) to 6" in output

    # The optimizer state, the step, the data stream and the dropout states all came back:
    # the resumed run ends where the uninterrupted one does.
    def restored(workdir):
        config = tiny_config(dataset=ab_dataset)
        generator, discriminator = models.build_models(config)
        generator_optimizer, discriminator_optimizer = make_optimizers(config, 6, 3)
        generator_optimizer.build(generator.trainable_variables)
        discriminator_optimizer.build(discriminator.trainable_variables)
        checkpoint = tf.train.Checkpoint(
            generator=generator,
            discriminator=discriminator,
            generator_optimizer=generator_optimizer,
            discriminator_optimizer=discriminator_optimizer,
        )
        checkpoint.restore(tf.train.latest_checkpoint(str(workdir / "checkpoints"))).expect_partial()
        return generator_optimizer, discriminator

    straight_optimizer, straight_discriminator = restored(straight)
    resumed_optimizer, resumed_discriminator = restored(resumed)
    assert int(resumed_optimizer.iterations) == 6
    for a, b in zip(straight_optimizer.variables, resumed_optimizer.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    for a, b in zip(straight_discriminator.weights, resumed_discriminator.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    straight_generator, _ = load_generator(str(straight))
    for a, b in zip(straight_generator.weights, generator.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_resume_refuses_another_architecture(tmp_path, ab_dataset):
    workdir = str(tmp_path / "run")
    fit(tiny_config(dataset=ab_dataset, steps=2), workdir, verbose=False)
    with pytest.raises(ValueError, match=r"was trained with norm='batch' but this run asks for norm='instance'"):
        fit(tiny_config(dataset=ab_dataset, steps=4, norm="instance"), workdir, verbose=False)


def test_a_checkpoint_of_older_networks_is_refused_not_resumed(tmp_path, ab_dataset, monkeypatch):
    # The old and new U-Nets have variables of the same shapes: restoring one into the other
    # would go on silently with another function. A checkpoint records its networks' form.
    from keras_pix2pix import checkpoints

    workdir = str(tmp_path / "run")
    fit(tiny_config(dataset=ab_dataset, steps=2), workdir, verbose=False)
    config_before = (tmp_path / "run" / "config.json").read_bytes()
    monkeypatch.setattr(checkpoints, "NETWORK_FORM", checkpoints.NETWORK_FORM + 1)
    with pytest.raises(ValueError, match=r"holds networks of an older keras-pix2pix .* cannot be resumed"):
        fit(workdir=workdir, steps=4, verbose=False)
    assert (tmp_path / "run" / "config.json").read_bytes() == config_before


def test_saved_generator_gives_the_same_outputs(tmp_path, ab_dataset):
    workdir = str(tmp_path / "run")
    generator = fit(tiny_config(dataset=ab_dataset, steps=2), workdir, verbose=False)
    reloaded = keras.models.load_model(os.path.join(workdir, "generator.keras"))
    images = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=5)
    np.testing.assert_array_equal(
        translate(generator, images, "inference").numpy(), translate(reloaded, images, "inference").numpy()
    )
    # Paper mode draws dropout masks: with the same random states both models agree exactly.
    for original, copy in zip(generator.layers, reloaded.layers):
        if isinstance(original, keras.layers.Dropout):
            copy.seed_generator.state.assign(original.seed_generator.state)
    np.testing.assert_array_equal(
        translate(generator, images, "paper").numpy(), translate(reloaded, images, "paper").numpy()
    )


@pytest.mark.slow
def test_generator_keras_runs_in_a_process_that_never_imports_keras_pix2pix(tmp_path, ab_dataset):
    workdir = str(tmp_path / "run")
    generator = fit(tiny_config(dataset=ab_dataset, steps=2), workdir, verbose=False)
    images = np.random.RandomState(6).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        import keras
        import numpy as np
        model = keras.models.load_model({os.path.join(workdir, "generator.keras")!r})
        np.save({str(tmp_path / "outputs.npy")!r}, model(np.load({str(tmp_path / "images.npy")!r}), training=False))
        assert not [name for name in sys.modules if name.startswith("keras_pix2pix")]
        print(sorted({{type(layer).__module__.split(".")[0] for layer in model.layers}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['keras']"
    outputs = np.load(tmp_path / "outputs.npy")
    # The same output as the trained model, in stock form and in the training form it trained in.
    np.testing.assert_allclose(outputs, translate(generator, images, "inference").numpy(), atol=1e-6)
    trained_form = fast.clone_as(generator, "train")
    np.testing.assert_allclose(outputs, trained_form(images, training=False).numpy(), atol=1e-5)


@pytest.mark.slow
def test_demo_training_brings_validation_l1_well_below_untrained(tmp_path, demo_data_dir):
    config = tiny_config(
        dataset="demo",
        data_dir=demo_data_dir,
        image_size=64,
        generator_filters=16,
        discriminator_filters=16,
        discriminator_layers=3,
        batch_size=4,
        steps=300,
        save_every=300,
        sample_every=150,
        log_every=50,
        sample_count=4,
        seed=1,
    )
    splits = datasets.find_dataset("demo", demo_data_dir)
    validation = data.eval_dataset(splits.validation, config, "BtoA", batch_size=1)

    def validation_l1(generator):
        return np.mean([float(tf.reduce_mean(tf.abs(translate(generator, x, "paper") - y))) for x, y in validation])

    keras.utils.set_random_seed(1)
    untrained, _ = models.build_models(config)
    before = validation_l1(untrained)
    trained = fit(config, str(tmp_path / "demo"), verbose=False)
    after = validation_l1(trained)
    print(f"validation L1 untrained {before:.3f}, trained {after:.3f}")
    assert after < 0.7 * before, (before, after)
    assert before - after > 0.1, (before, after)
    assert (tmp_path / "demo" / "samples" / "step_0000300.png").exists()


@pytest.mark.parametrize("precision, compute", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")])
@pytest.mark.slow
def test_mixed_precision_keeps_float32_weights_outputs_and_losses(precision, compute):
    config = tiny_config(precision=precision)
    keras.utils.set_random_seed(0)
    generator, discriminator = models.build_models(config)
    assert generator.get_layer("down2_conv").compute_dtype == compute
    assert discriminator.get_layer("block1_conv").compute_dtype == compute
    assert {variable.dtype for variable in generator.trainable_variables + discriminator.trainable_variables} == {"float32"}
    images = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=1)
    assert generator(images).dtype == tf.float32 and discriminator([images, images]).dtype == tf.float32
    generator_optimizer, discriminator_optimizer = make_optimizers(config, 10, 5)
    assert isinstance(generator_optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
    step = make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config)
    before = _weights(generator)
    # A loss-scale optimizer skips the first steps while its scale overflows float16; then it learns.
    for _ in range(8):
        losses = step(images, tf.random.uniform((1, 32, 32, 3), -1, 1, seed=2))
    assert losses["generator_total"].dtype == tf.float32 and bool(losses["finite"])
    assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(generator)))


@pytest.mark.slow
def test_xla_step_runs_and_traces_once():
    config = tiny_config(xla=True)
    keras.utils.set_random_seed(0)
    generator, discriminator = models.build_models(config)
    generator_optimizer, discriminator_optimizer = make_optimizers(config, 10, 5)
    # Built up front, as fit does: a first call that creates variables would trace twice.
    generator_optimizer.build(generator.trainable_variables)
    discriminator_optimizer.build(discriminator.trainable_variables)
    step = make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config)
    images = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=1)
    for _ in range(3):
        losses = step(images, images)
    assert bool(losses["finite"]) and step.experimental_get_tracing_count() == 1


def test_optimizers_use_epsilon_1e8():
    from keras_pix2pix.train import make_optimizers

    assert [optimizer.epsilon for optimizer in make_optimizers(tiny_config(), 10, 5)] == [1e-8, 1e-8]


def test_a_deterministic_fit_leaves_op_determinism_as_it_found_it(tmp_path, ab_dataset):
    # TensorFlow's public API can turn op determinism on but neither read nor undo it: fit uses the framework's.
    from tensorflow.python.framework import config as framework_config

    assert not framework_config.is_op_determinism_enabled()
    fit(tiny_config(dataset=ab_dataset, steps=1, deterministic=True, seed=1), str(tmp_path / "a"), verbose=False)
    assert not framework_config.is_op_determinism_enabled()
    # A caller who had turned it on finds it still on.
    tf.config.experimental.enable_op_determinism()
    try:
        fit(tiny_config(dataset=ab_dataset, steps=1, deterministic=True, seed=1), str(tmp_path / "b"), verbose=False)
        assert framework_config.is_op_determinism_enabled()
    finally:
        framework_config.disable_op_determinism()


# --- non-finite losses (a train step made through fit's train_step_factory) -------------------------


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, injected_nan):
    folder = write_ab_folder(tmp_path / "pairs", count=3)
    workdir = str(tmp_path / "run")
    pattern = r"non-finite loss at step 4 \(generator_total nan, .*\); the last good checkpoint, .*ckpt-2, is untouched"
    with pytest.raises(train.NonFiniteLossError, match=pattern):
        train.fit(
            tiny_config(dataset=folder, steps=8, save_every=2), workdir, verbose=False, train_step_factory=injected_nan
        )
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-2")
    generator, _ = load_generator(workdir)
    assert all(np.isfinite(weight.numpy()).all() for weight in generator.weights)


def test_nan_loss_skip_rolls_back_and_goes_on(tmp_path, injected_nan, capsys):
    folder = write_ab_folder(tmp_path / "pairs", count=3)
    workdir = str(tmp_path / "run")
    generator = train.fit(tiny_config(dataset=folder, steps=8, save_every=2, on_nan="skip"), workdir,
                          train_step_factory=injected_nan)
    output = capsys.readouterr().out
    assert "non-finite loss at step 4 (generator_total nan" in output
    assert "rolled back to step 2, skipping that batch" in output
    assert all(np.isfinite(weight.numpy()).all() for weight in generator.weights)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 8
    assert reader.get_tensor("skipped_batches/.ATTRIBUTES/VARIABLE_VALUE") == 2  # batches 3 and 4


def _hung(number, frame):
    raise TimeoutError("fit did not give up within 900 s")


def test_on_nan_skip_gives_up_when_the_loss_stays_non_finite(run, capsys, always_nan):
    # A hang fails the test through the alarm rather than block the suite. The alarm needs a
    # handler: SIGALRM's default action ends the process, here the test worker, and the bound
    # is far above the 35 s this takes, so that a busy machine does not trip it.
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(900)
    try:
        line = refused(capsys, r"non-finite loss 11 times since .*ckpt-2, rolled back each time .* diverged", "fit",
                       "--workdir", run, "--steps", "50", "--on-nan", "skip", status=1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "lower --learning-rate" in line
    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-2")
