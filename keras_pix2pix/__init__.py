"""keras-pix2pix: pix2pix image-to-image translation (Isola et al., CVPR 2017) in Keras 3.

Every command of `keras-pix2pix` is a function here: fit, predict, evaluate, export,
import_checkpoint. They are imported on first use, and TensorFlow with them, so that
`import keras_pix2pix` (and `keras-pix2pix --help`) costs a few milliseconds.

Example:
>>> import keras_pix2pix
>>> config = keras_pix2pix.Config(dataset="demo", image_size=64, steps=200)
>>> keras_pix2pix.build_generator(image_size=64, filters=8).name
'generator'
"""

import importlib
import os
import sys

# Keras picks its backend when it is first imported, so this must come before any `import keras`.
_backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if _backend != "tensorflow":
    raise ImportError(
        f"keras_pix2pix runs on Keras's TensorFlow backend, but KERAS_BACKEND={_backend!r}: "
        "unset it or set KERAS_BACKEND=tensorflow"
    )
if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "tensorflow":
    raise ImportError(
        f"keras_pix2pix runs on Keras's TensorFlow backend, but Keras was already imported with the "
        f"{sys.modules['keras'].backend.backend()!r} backend: import keras_pix2pix first, or set KERAS_BACKEND=tensorflow"
    )

__version__ = "0.1.0"

# The public API: each name, and the module that defines it.
_API = {
    "Config": "config",
    "UsageError": "errors",
    "build_discriminator": "models",
    "build_generator": "models",
    "discriminator_loss": "losses",
    "evaluate": "evaluation",
    "export": "exports",
    "fit": "train",
    "generator_loss": "losses",
    "import_checkpoint": "importing",
    "load_generator": "translation",
    "predict": "translation",
    "receptive_field": "models",
    "translate": "modes",
}

__all__ = sorted(_API)


def __getattr__(name):
    # PEP 562: keras_pix2pix.fit and `from keras_pix2pix import fit` import keras_pix2pix.train here.
    if name not in _API:
        raise AttributeError(f"module 'keras_pix2pix' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_pix2pix.{_API[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
