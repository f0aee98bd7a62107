"""Progress of remote workers on the driver's console: a Ray queue between rank 0 and a driver bar.

A Ray Train worker's stdout goes to its stage's log file, so its own tqdm bar would never reach the
user. Rank 0 instead puts (total, done, figures) on a `ray.util.queue.Queue` (`QueueBar`, the same
calls as a tqdm bar), and a thread in the driver draws them as the stage's bar (`ProgressFeed`).
"""

from __future__ import annotations

import threading
import time
from queue import Empty
from typing import Any

from empathy_ray.runtime import console


class QueueBar:
    """Worker side: `update` / `set_postfix` / `close` like tqdm, sent to the driver at most twice a second
    (and always the last state)."""

    def __init__(self, queue: Any, total: int) -> None:
        self.queue, self.total, self.n = queue, total, 0
        self.postfix: dict[str, str] = {}
        self._sent = 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        self._send(force=self.n >= self.total)

    def set_postfix(self, figures: dict[str, str]) -> None:
        self.postfix = dict(figures)
        self._send()

    def close(self) -> None:
        self._send(force=True)

    def _send(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._sent >= 0.5:
            self._sent = now
            self.queue.put((self.total, self.n, self.postfix))


class ProgressFeed:
    """Driver side: a queue for the workers (`queue`) drawn as the console bar `desc` until `close`."""

    def __init__(self, desc: str) -> None:
        from ray.util.queue import Queue

        self.desc = desc
        self.queue = Queue(actor_options={"num_cpus": 0})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._draw, name=f"progress-{desc}", daemon=True)
        self._thread.start()

    def _draw(self) -> None:
        bar = None
        while not self._stop.is_set():
            try:
                total, done, figures = self.queue.get(timeout=0.5)
            except (Empty, Exception):  # noqa: BLE001 - the queue actor gone at shutdown ends the bar too
                continue
            if bar is None:
                bar = console.progress(total, self.desc)
            bar.n = done
            bar.set_postfix(figures, refresh=False)
            bar.refresh()
        if bar is not None:
            bar.close()

    def close(self) -> None:
        import ray

        self._stop.set()
        self._thread.join(timeout=5)
        ray.kill(self.queue.actor)
