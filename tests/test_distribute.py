"""tf.distribute: mirrored replicas match one device, multi-worker training, checkpoints across strategies.

Each case runs in a fresh Python process: logical devices and cluster settings must be fixed
before TensorFlow starts, and this test process has started it already.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, refused, write_ab_folder

from keras_pix2pix import distribute
from keras_pix2pix.modes import translate
from keras_pix2pix.translation import load_generator
from keras_pix2pix.workdir import restore_generator

# Each test trains in processes of its own.
pytestmark = pytest.mark.slow

COMMON = dict(
    image_size=32, generator_filters=8, discriminator_filters=8, discriminator_layers=1, batch_size=2,
    steps=3, save_every=3, sample_every=100, sample_count=1, seed=5, dropout=0.0,
)

MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from keras_pix2pix.config import Config
from keras_pix2pix.train import fit
folder, output, common = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
report = {}
for name, settings in (("none", dict(norm="none")), ("instance", dict(norm="instance")),
                       ("sync_batchnorm", dict(norm="batch", sync_batchnorm=True))):
    single = fit(Config(dataset=folder, strategy="default", **settings, **common), f"{output}/{name}-single", verbose=False)
    mirrored = fit(Config(dataset=folder, strategy="mirrored", **settings, **common), f"{output}/{name}-mirrored", verbose=False)
    differences = np.concatenate([np.abs(a.numpy() - b.numpy()).ravel() for a, b in zip(single.weights, mirrored.weights)])
    report[name] = [float(differences.max()), float(np.quantile(differences, 0.999))]
# A checkpoint written by the mirrored run resumes under the default strategy.
resumed = fit(Config(dataset=folder, strategy="default", norm="instance", **{**common, "steps": 5}),
              f"{output}/instance-mirrored", verbose=False)
report["replicas"] = len(tf.config.list_logical_devices("CPU"))
print("REPORT " + json.dumps(report))
"""


def _python(code, *arguments, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


def test_mirrored_matches_one_device_and_resumes_under_default(tmp_path):
    folder = write_ab_folder(tmp_path / "pairs", count=4)
    result = _python(MIRRORED, folder, str(tmp_path), json.dumps(COMMON))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.split("REPORT ")[1])
    assert report["replicas"] == 2
    # Adam's first steps move a weight by about the learning rate (2e-4) whatever its gradient's size, so
    # a gradient near zero whose float rounding differs across replicas moves a handful of weights by up to
    # 3e-5 (measured: 9 of 262179 with synchronized batch norm). Unsynchronized batch norm moves 58% of
    # them past 1e-5 and the largest by 0.036: the bounds below tell the two apart.
    for norm in ("none", "instance", "sync_batchnorm"):
        largest, almost_all = report[norm]
        assert largest <= 1e-4 and almost_all <= 1e-6, (norm, report)
    assert tf.train.latest_checkpoint(str(tmp_path / "instance-mirrored" / "checkpoints")).endswith("ckpt-5")


def test_batch_must_divide_by_replicas(tmp_path):
    folder = write_ab_folder(tmp_path / "pairs", count=2)
    code = MIRRORED.split("folder, output")[0] + textwrap.dedent(
        f"""
        from keras_pix2pix.cli import main
        sys.exit(main(["fit", "--dataset", {folder!r}, "--workdir", {str(tmp_path / "run")!r}, "--strategy",
                       "mirrored", "--batch-size", "3", "--steps", "1", "--image-size", "32"]))
        """
    )
    result = _python(code)
    assert result.returncode == 2
    assert "batch_size 3 must be a multiple of the 2 replicas of strategy mirrored" in result.stderr


WORKER = """
import sys
from keras_pix2pix.config import Config
from keras_pix2pix.train import fit
import json

folder, workdir, common = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
fit(Config(dataset=folder, strategy="multiworker", norm="instance", **common), workdir, verbose=False)
print("WORKER DONE")
"""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for item in sockets:
        item.bind(("127.0.0.1", 0))
    ports = [item.getsockname()[1] for item in sockets]
    for item in sockets:
        item.close()
    return ports


def test_two_workers_train_and_the_chief_checkpoint_restores_on_one_device(tmp_path):
    folder = write_ab_folder(tmp_path / "pairs", count=4)
    workdir = str(tmp_path / "run")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        environment = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, folder, workdir, json.dumps(COMMON)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
        )
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (out, error) in zip(processes, outputs):
        assert process.returncode == 0 and "WORKER DONE" in out, error[-3000:]
    # Only the chief (worker 0) wrote the shared artifacts; worker 1's checkpoints were temporary.
    assert sorted(
        name for name in os.listdir(os.path.join(workdir, "checkpoints")) if not name.startswith("ckpt-")
    ) == ["checkpoint"]
    assert os.path.exists(os.path.join(workdir, "generator.keras"))
    generator, config = load_generator(workdir)
    restored = restore_generator(workdir, config)
    images = tf.random.uniform((1, 32, 32, 3), -1, 1, seed=1)
    np.testing.assert_array_equal(
        translate(generator, images, "inference").numpy(), translate(restored, images, "inference").numpy()
    )
    assert config.strategy == "multiworker" and config.batch_size == 2


# --- an invalid TF_CONFIG ---------------------------------------------------------------------------


def test_an_invalid_tf_config_is_named(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{bad")
    refused(capsys, r"TF_CONFIG is not valid JSON", "fit", "--dataset", trained[0], "--workdir", tmp_path / "run",
            *TINY, "--strategy", "multiworker")


def test_bfloat16_on_a_cpu_without_bfloat16_arithmetic_gets_a_note(tmp_path):
    strategy = tf.distribute.get_strategy()
    without, with_amx = tmp_path / "without", tmp_path / "with"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n")
    assert "mixed_bfloat16 is emulated" in distribute.precision_note("mixed_bfloat16", strategy, str(without))
    assert distribute.precision_note("mixed_bfloat16", strategy, str(with_amx)) is None
    assert distribute.precision_note("float32", strategy, str(without)) is None
    assert distribute.precision_note("mixed_bfloat16", strategy, str(tmp_path / "absent")) is None
