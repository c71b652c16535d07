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


def quiet_tensorflow():
    """Keeps TensorFlow's log lines (and its libraries' warnings) off the terminal; --verbose skips this.

    Returns:
        The _NativeFilter to close when the command ends.
    """
    native = _NativeFilter()
    # Fewer lines to filter, and a quiet TensorFlow where the filter cannot reach (its children).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("absl", "tensorflow", "keras", "tensorflow_datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    importlib.import_module("absl.logging").set_verbosity("error")
    # AutoGraph's "could not transform" notes, printed as well as logged.
    os.environ.setdefault("AUTOGRAPH_VERBOSITY", "0")
    for module in ("tensorflow", "keras", "tensorflow_datasets", "absl", "tf_keras", "google"):
        warnings.filterwarnings("ignore", module=module)
    return native
