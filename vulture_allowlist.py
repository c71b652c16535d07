"""Names vulture (dead-code finder) reports as unused that something outside the package calls.

Run: `vulture` (settings in pyproject.toml); tests/test_lint.py runs it. Each name is here with who
uses it; a name that is truly dead is removed from the code, not added here.
"""

# ruff: noqa: F821, B018 - vulture's allow-list format: bare names and attributes of a placeholder `_`

# PEP 562: Python calls a module's __getattr__ and __dir__ (the lazy public API of __init__.py).
__getattr__
__dir__

# tf.lite.TFLiteConverter reads the settings exports.tflite_model assigns to it.
_.supported_ops
_.optimizations
_.supported_types
_.representative_dataset
_.inference_input_type
_.inference_output_type

# tensorflow-datasets reads a builder's class attributes and calls its hooks (release.Pix2Pix).
RELEASE_NOTES
BUILDER_CONFIGS
MANUAL_DOWNLOAD_INSTRUCTIONS
_._info
_._log_download_bytes
_._log_download_done
_._split_generators

# pickle's protocol: the unpickler calls find_class and persistent_load, and torch's rebuild
# functions take arguments they must accept and ignore (state_dicts.py).
unused
new_type
_.find_class
_.persistent_load

# tf.data reads the options' auto_shard_policy (train.py, distribute's input).
_.auto_shard_policy

# http.server calls its handler's log_message for each request (web.py keeps it quiet).
_.log_message
