"""The pool's gate and its blocked-thread test, with real threads (the worker's use of them is tested end to
end in test_e2e_concurrency.py)."""

from __future__ import annotations

import threading
import time

from ehttpd.pool import Gate, thread_blocked


def test_thread_blocked_tells_a_sleeping_thread_from_a_running_one():
    release = threading.Event()
    ids: dict[str, int] = {}

    def sleeper() -> None:
        ids["sleeper"] = threading.get_native_id()
        release.wait(5)

    def spinner() -> None:
        ids["spinner"] = threading.get_native_id()
        while not release.is_set():
            pass

    threads = [threading.Thread(target=sleeper), threading.Thread(target=spinner)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 5
        while len(ids) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert thread_blocked(ids["sleeper"])
        # The spinner is running or runnable (waiting for a CPU or the GIL holder to be scheduled) when
        # sampled; give it a few looks, as the worker does.
        assert any(not thread_blocked(ids["spinner"]) for _ in range(50))
    finally:
        release.set()
        for thread in threads:
            thread.join(5)
    assert thread_blocked(2**22 + 12345)  # no such thread here: counts as blocked


def test_gate_lets_in_as_many_threads_as_allowed():
    gate = Gate(3)
    inside: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def runner(n: int) -> None:
        while gate.enter():
            with lock:
                inside.append(n)
            stop.wait(5)
            with lock:
                inside.remove(n)
            gate.leave()
            return

    threads = [threading.Thread(target=runner, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    assert len(inside) == 1 and gate.running == 1  # one at first
    gate.allow(3)
    time.sleep(0.2)
    assert len(inside) == 3 and gate.running == 3
    gate.allow(10)  # never more than the pool's size
    time.sleep(0.2)
    assert len(inside) == 3 and gate.allowed == 3
    gate.allow(1)
    assert gate.crowded  # the ones inside step out when they can; none is pushed out
    gate.close()
    stop.set()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    assert gate.running == 0
