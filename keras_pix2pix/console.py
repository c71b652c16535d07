"""What the command line does to the terminal: TensorFlow's native log lines and its libraries' warnings kept off it.

Entered only by the command line (`--verbose` skips it); library calls leave the caller's
stderr alone.
"""

import importlib
import logging
import os
import re
import sys
import threading
import warnings

# Lines that TensorFlow, LiteRT and the TFLite converter write from C++, past Python's sys.stderr:
# absl's log lines below FATAL (I0000 ..., W0000 ..., E0000 ...), the start-up notes and the
# converter's and interpreter's chatter. Anything else (a FATAL line, a crash report) goes through.
NATIVE_NOISE = re.compile(
    r"^([IWE]\d{4} \d\d:\d\d:\d+\.\d+\s|WARNING: All log messages before absl::InitializeLog|To enable the following "
    r"instructions: |INFO: Created TensorFlow Lite |INFO: Initialized TensorFlow Lite |fully_quantize: \d)"
)


class _NativeFilter:
    """File descriptor 2 through a pipe whose lines are passed on unless they are TensorFlow's noise.

    TensorFlow 2.21 writes its start-up lines through absl before absl's logging is set up, which
    ignores TF_CPP_MIN_LOG_LEVEL, and LiteRT and the converter print from C++: no setting reaches
    them all. Python's own writes to sys.stderr (our error lines) pass through unchanged.
    """

    def __init__(self):
        sys.stderr.flush()
        self.real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.thread = threading.Thread(target=self._pump, args=(read_end,), daemon=True)
        self.thread.start()

    def _pump(self, read_end):
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not NATIVE_NOISE.match(line.decode("utf-8", "replace")):
                    os.write(self.real, line)

    def close(self):
        """Puts file descriptor 2 back and waits for the lines still in the pipe."""
        sys.stderr.flush()
        os.dup2(self.real, 2)  # the pipe's last writer closes: the pump reads to its end
        self.thread.join(timeout=5)
        os.close(self.real)


class _Quieted:
    """What quiet_tensorflow changed, and how to put it back: closing restores the caller's process."""

    LOGGERS = ("absl", "tensorflow", "keras", "tensorflow_datasets")
    VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "AUTOGRAPH_VERBOSITY")

    def __init__(self):
        self.warnings = warnings.catch_warnings()  # restores the filters on exit, as Python's own code does
        self.warnings.__enter__()
        self.levels = {name: logging.getLogger(name).level for name in self.LOGGERS}
        self.variables = {name: os.environ.get(name) for name in self.VARIABLES}
        self.absl_logging = importlib.import_module("absl.logging")
        self.verbosity = self.absl_logging.get_verbosity()
        self.native = _NativeFilter()

    def close(self):
        """Puts back file descriptor 2, the warning filters, the loggers' levels and the environment."""
        self.native.close()
        self.warnings.__exit__(None, None, None)
        self.absl_logging.set_verbosity(self.verbosity)  # first: it sets the absl logger's level too
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
        for name, value in self.variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def quiet_tensorflow():
    """Keeps TensorFlow's log lines (and its libraries' warnings) off the terminal; --verbose skips this.

    Returns:
        What to close when the command ends: closing puts back everything this changed (file
        descriptor 2, warning filters, loggers' levels, absl's verbosity, environment variables),
        so that a caller of cli.main (a test, a notebook) finds its process as it was.

    Example:
    >>> before = list(warnings.filters)
    >>> quieted = quiet_tensorflow()
    >>> quieted.close()
    >>> warnings.filters == before
    True
    """
    quieted = _Quieted()
    # Fewer lines to filter, and a quiet TensorFlow where the filter cannot reach (its children).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in _Quieted.LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    quieted.absl_logging.set_verbosity("error")
    # AutoGraph's "could not transform" notes, printed as well as logged.
    os.environ.setdefault("AUTOGRAPH_VERBOSITY", "0")
    for module in ("tensorflow", "keras", "tensorflow_datasets", "absl", "tf_keras", "google"):
        warnings.filterwarnings("ignore", module=module)
    return quieted
