"""keras_pix2pix.stopping: SIGTERM and SIGINT stop at once, or are acknowledged and wait for a safe point."""

import pickle
import signal
import threading
import time

import pytest

from keras_pix2pix.errors import Stopped, TrainingInterrupted
from keras_pix2pix.stopping import stop_requests


def _signal_main_thread(number, until=lambda: False):
    """Sends a signal to this process's main thread and waits, up to 10 s, for its Python handler to have run.

    Sent to the main thread itself: a signal sent to the process may land on one of TensorFlow's
    threads, and Python runs the handler only when the main thread next checks, so a stop could
    otherwise arrive after the test has put the previous handler back.
    """
    signal.pthread_kill(threading.main_thread().ident, number)
    deadline = time.monotonic() + 10
    while not until() and time.monotonic() < deadline:
        time.sleep(0.01)  # the handler runs when sleep is interrupted


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_at_once_outside_a_deferred_block(number):
    with pytest.raises(Stopped) as stop:
        with stop_requests():
            _signal_main_thread(number)
    assert stop.value.signal_name == signal.Signals(number).name and stop.value.removed == []


def test_a_deferred_stop_is_acknowledged_once_and_recorded():
    lines = []
    with stop_requests(acknowledge=lines.append) as requests:
        with requests.deferring("stopping after the step in progress, with a checkpoint"):
            _signal_main_thread(signal.SIGTERM, until=lambda: len(requests.requested) == 1)
            # A second one (a second Ctrl-C): recorded, not announced again.
            _signal_main_thread(signal.SIGINT, until=lambda: len(requests.requested) == 2)
        assert requests.requested == ["SIGTERM", "SIGINT"]
    assert lines == ["SIGTERM received: stopping after the step in progress, with a checkpoint"]


def test_the_previous_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stop_requests() as requests:
        assert signal.getsignal(signal.SIGTERM) is requests and signal.getsignal(signal.SIGINT) is requests
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# --- a stop crosses process boundaries --------------------------------------------------------------


def test_a_time_limit_or_signal_stop_crosses_process_boundaries_with_its_step():
    # A process pool returns a worker's exception pickled: fit stopped by its time limit in a
    # worker must reach the caller as itself, not break the pool.
    error = pickle.loads(pickle.dumps(TrainingInterrupted("time limit of 15m reached: saved a checkpoint at step 7", step=7)))
    assert isinstance(error, TrainingInterrupted) and error.step == 7
    assert str(error) == "time limit of 15m reached: saved a checkpoint at step 7"
