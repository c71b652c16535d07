"""The caller's global random states, kept: a library call that seeds (evaluate's seed) seeds only itself.

`keras.utils.set_random_seed` reseeds Python, NumPy, TensorFlow and Keras for the whole process,
and loading a model draws its dropout layers' seeds from Python's generator. predict and evaluate
seed and load as before, so that their outputs and metrics stay the same for the same seed, inside
`keep_random_states`, which puts every global state back when they return: a notebook's own random
sequences go on as if nothing had been called.
"""

import contextlib
import functools
import random

import numpy as np
from keras.src.backend.common import global_state
from keras.src.random import seed_generator
from keras.src.utils import rng_utils
from tensorflow.python.eager import context
from tensorflow.python.ops import stateful_random_ops


def _keras_states():
    """Keras' global seed, and its global SeedGenerator with the state it holds now (or None)."""
    generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    state = generator.state.numpy() if generator is not None else None
    return global_state.get_global_attribute(rng_utils.GLOBAL_RANDOM_SEED), generator, state


def _tensorflow_states():
    """TensorFlow's global seed, the generator of its ops' seeds, and its global tf.random.Generator's state."""
    eager = context.context()
    operation_seeds = getattr(eager, "_rng", None)
    generator = getattr(stateful_random_ops, "global_generator", None)  # made on first use; None until then
    return (
        getattr(eager, "_seed", None),
        operation_seeds.getstate() if operation_seeds is not None else None,
        generator.state.numpy() if generator is not None else None,
    )


def _restore_tensorflow(seed, operation_seeds, generator_state):
    eager = context.context()
    if getattr(eager, "_seed", None) != seed or getattr(eager, "_rng", None) is None:
        eager._set_global_seed(seed)  # the only setter that leaves no graph seed behind
    if operation_seeds is not None and getattr(eager, "_rng", None) is not None:
        # The next op's seed is the one it would have had: the caller's sequence goes on unchanged.
        eager._rng.setstate(operation_seeds)
    generator = getattr(stateful_random_ops, "global_generator", None)
    if generator_state is not None and generator is not None:
        generator.state.assign(generator_state)


@contextlib.contextmanager
def kept_random_states():
    """Puts Python's, NumPy's, TensorFlow's and Keras' global random states back as they were on entry.

    Example:
    >>> import keras
    >>> random.seed(1)
    >>> with kept_random_states():
    ...     keras.utils.set_random_seed(0)
    ...     _ = random.random(), np.random.random()
    >>> random.random() == random.Random(1).random()
    True
    """
    python, numpy = random.getstate(), np.random.get_state()
    keras_seed, keras_generator, keras_state = _keras_states()
    tensorflow = _tensorflow_states()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, keras_seed)
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, keras_generator)
        if keras_generator is not None:
            keras_generator.state.assign(keras_state)
        _restore_tensorflow(*tensorflow)


def keep_random_states(function):
    """Decorates a function that may seed the process: its caller's global random states stay as they were.

    Example:
    >>> @keep_random_states
    ... def noisy():
    ...     return np.random.seed(0)
    >>> state = np.random.get_state()[1].copy()
    >>> noisy()
    >>> bool((np.random.get_state()[1] == state).all())
    True
    """

    @functools.wraps(function)
    def kept(*arguments, **keywords):
        with kept_random_states():
            return function(*arguments, **keywords)

    return kept
