"""keras_pix2pix.stopping: SIGTERM and SIGINT stop at once, or are acknowledged and wait for a safe point."""

import os
import signal

import pytest

from keras_pix2pix.errors import Stopped
from keras_pix2pix.stopping import stop_requests


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_at_once_outside_a_deferred_block(number):
    with pytest.raises(Stopped) as stop:
        with stop_requests():
            os.kill(os.getpid(), number)
            for _ in range(1000):  # the handler runs between two bytecodes of the main thread
                pass
    assert stop.value.signal_name == signal.Signals(number).name and stop.value.removed == []


def test_a_deferred_stop_is_acknowledged_once_and_recorded():
    lines = []
    with stop_requests(acknowledge=lines.append) as requests:
        with requests.deferring("stopping after the step in progress, with a checkpoint"):
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)  # a second one: no second announcement
            for _ in range(1000):
                pass
        assert requests.requested == ["SIGTERM", "SIGINT"]
    assert lines == ["SIGTERM received: stopping after the step in progress, with a checkpoint"]


def test_the_previous_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stop_requests() as requests:
        assert signal.getsignal(signal.SIGTERM) is requests and signal.getsignal(signal.SIGINT) is requests
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
