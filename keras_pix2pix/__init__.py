"""keras-pix2pix: pix2pix image-to-image translation (Isola et al., CVPR 2017) in Keras 3.

Every command of `keras-pix2pix` is a function here: fit, predict, evaluate, export, import_checkpoint.

Example:
>>> import keras_pix2pix
>>> config = keras_pix2pix.Config(dataset="demo", image_size=64, steps=200)
>>> keras_pix2pix.build_generator(image_size=64, filters=8).name
'generator'
"""

import os

# Keras picks its backend when it is first imported, so this must come before `import keras`.
_backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if _backend != "tensorflow":
    raise ImportError(
        f"keras_pix2pix runs on Keras's TensorFlow backend, but KERAS_BACKEND={_backend!r}: "
        "unset it or set KERAS_BACKEND=tensorflow"
    )

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"keras_pix2pix runs on Keras's TensorFlow backend, but Keras was already imported with the "
        f"{keras.backend.backend()!r} backend: import keras_pix2pix first, or set KERAS_BACKEND=tensorflow"
    )

from keras_pix2pix.config import Config, UsageError  # noqa: E402
from keras_pix2pix.evaluation import evaluate  # noqa: E402
from keras_pix2pix.exports import export  # noqa: E402
from keras_pix2pix.importing import import_checkpoint  # noqa: E402
from keras_pix2pix.losses import discriminator_loss, generator_loss  # noqa: E402
from keras_pix2pix.models import build_discriminator, build_generator, receptive_field  # noqa: E402
from keras_pix2pix.modes import translate  # noqa: E402
from keras_pix2pix.train import fit  # noqa: E402
from keras_pix2pix.translation import load_generator, predict  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Config",
    "UsageError",
    "build_discriminator",
    "build_generator",
    "discriminator_loss",
    "evaluate",
    "export",
    "fit",
    "generator_loss",
    "import_checkpoint",
    "load_generator",
    "predict",
    "receptive_field",
    "translate",
]
