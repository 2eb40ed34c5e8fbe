"""fintech_release.concurrency: pieces side by side, results in order, and every piece stopped and cleaned up when
the caller is interrupted or one piece fails (what the releases step relies on to remove the replicas it started)."""

from __future__ import annotations

import threading

import pytest

from fintech_release.concurrency import Concurrently


class Piece:
    """Waits until released (or interrupted); records whether its clean-up ran."""

    def __init__(self, value: int) -> None:
        self.value, self.started, self.release = value, threading.Event(), threading.Event()
        self.cleaned_up = False

    def __call__(self) -> int:
        self.started.set()
        try:
            while not self.release.wait(0.01):
                pass
            return self.value
        except BaseException:
            self.cleaned_up = True
            raise


def test_results_come_in_the_callers_order_whatever_order_the_pieces_end_in() -> None:
    pieces = [Piece(value) for value in range(3)]
    with Concurrently(pieces, at_once=3) as work:
        for piece in pieces:
            assert piece.started.wait(10)
        pieces[2].release.set()
        pieces[0].release.set()
        assert work.result(0) == 0
        pieces[1].release.set()
        assert [work.result(index) for index in range(3)] == [0, 1, 2]


def test_an_interruption_stops_every_running_piece_through_its_own_clean_up_and_starts_no_waiting_one() -> None:
    pieces = [Piece(value) for value in range(3)]
    with pytest.raises(KeyboardInterrupt):
        with Concurrently(pieces, at_once=2) as work:
            assert pieces[0].started.wait(10) and pieces[1].started.wait(10)
            raise KeyboardInterrupt  # as Ctrl-C arrives in the main thread while it waits for a result
    assert pieces[0].cleaned_up and pieces[1].cleaned_up
    assert not pieces[2].started.is_set()
    assert not any(work.succeeded(index) for index in range(3))


def test_a_failing_piece_stops_the_others_once_its_error_leaves_the_block() -> None:
    def failing() -> int:
        raise ValueError("the Docker engine did not start a replica")

    others = [Piece(1), Piece(2)]
    with pytest.raises(ValueError, match="did not start"):
        with Concurrently([failing, *others], at_once=3) as work:
            assert others[0].started.wait(10) and others[1].started.wait(10)
            work.result(0)
    assert others[0].cleaned_up and others[1].cleaned_up


def test_a_piece_that_ended_before_the_interruption_keeps_its_result() -> None:
    finished, running = Piece(7), Piece(8)
    finished.release.set()
    with pytest.raises(KeyboardInterrupt):
        with Concurrently([finished, running], at_once=2) as work:
            assert work.result(0) == 7 and running.started.wait(10)
            raise KeyboardInterrupt
    assert work.succeeded(0) and not finished.cleaned_up
    assert not work.succeeded(1) and running.cleaned_up
