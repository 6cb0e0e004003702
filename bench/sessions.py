"""Several sessions of one backend row at once: batches dealt across them, results merged in dataset order.

A session is one instance of the row's backend (for tfjs: one browser, local or on a Selenium Grid),
started and warmed up like a single one. :func:`deal` hands batches to whichever session is free
(each in its own thread; the backends' own work releases the GIL: a browser, a subprocess, TensorFlow)
and yields the results in batch order, so the records come out exactly as with one session.

A batch on which the backend raised (its engine died or hung: not a photo the model cannot read) is
retried once on another session; a session on which that happens :data:`LOST_AFTER` batches in a row
is taken as lost (a browser the grid killed, a node that went away): it is replaced by a new one,
once, while the others go on.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bench.backend import Backend
from bench.results.records import Recognition

LOST_AFTER = 2
POLL_S = 0.1
ALL_LOST = "not run: every session of this row was lost"

T = TypeVar("T")


@dataclass
class Session:
    """One slot of the row: its current backend, what it did, and the backends it replaced."""

    index: int
    backend: Backend
    photos: int = 0
    failed_in_a_row: int = 0
    generation: int = 0
    alive: bool = True
    retired: list[Backend] = field(default_factory=list)

    @property
    def backends(self) -> list[Backend]:
        """Every backend this slot has had, the current one last."""
        return [*self.retired, self.backend]


@dataclass(frozen=True)
class Dealt(Generic[T]):
    """A batch's results and the session that produced them (``-1``: none could)."""

    batch: int
    items: Sequence[T]
    results: list[Recognition]
    walls: Sequence[float | None]
    session: int | None


@dataclass(frozen=True)
class _Task(Generic[T]):
    batch: int
    items: Sequence[T]
    retried: bool = False
    not_on: int | None = None


Work = Callable[[Backend, Sequence[T]], tuple[list[Recognition], Sequence[float | None], bool]]
"""``work(backend, items) -> (a result per item, a wall time in ms per item, whether the engine failed)``:
the engine failed when the backend raised or is no longer :meth:`bench.backend.Backend.healthy`."""


class _Dealer(Generic[T]):
    """The threads and queues of one :func:`deal`."""

    def __init__(self, sessions: list[Session], work: Work, replace: Callable[[], Backend] | None) -> None:
        self.sessions = sessions
        self.work = work
        self.replace = replace
        self.tasks: queue.Queue[_Task[T]] = queue.Queue()
        self.done: queue.Queue[tuple[_Task[T], list[Recognition], Sequence[float | None], bool, Session, int]] = \
            queue.Queue()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [self._start(s) for s in sessions]

    def _start(self, session: Session) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(session, session.generation), daemon=True,
                                  name=f"session-{session.index}.{session.generation}")
        thread.start()
        return thread

    def alive(self, but: Session | None = None) -> bool:
        with self.lock:
            return any(s.alive for s in self.sessions if s is not but)

    def _run(self, session: Session, generation: int) -> None:
        while not self.stop.is_set():
            with self.lock:
                if session.generation != generation or not session.alive:
                    return
                backend = session.backend
            try:
                task = self.tasks.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if task.not_on == session.index and self.alive(but=session):
                self.tasks.put(task)
                self.stop.wait(POLL_S / 10)
                continue
            results, walls, failed = self.work(backend, task.items)
            self.done.put((task, results, walls, failed, session, generation))

    def lost(self, session: Session) -> bool:
        """Retire a lost session; replace it once. Whether a new backend now runs in its place."""
        with self.lock:
            session.alive = False
            session.generation += 1
            if self.replace is None or session.retired:
                return False
        try:
            backend = self.replace()
        except Exception:
            return False
        with self.lock:
            session.retired.append(session.backend)
            session.backend, session.alive, session.failed_in_a_row = backend, True, 0
        self.threads.append(self._start(session))
        return True


def deal(sessions: list[Session], batches: Sequence[Sequence[T]], work: Work,
         replace: Callable[[], Backend] | None = None) -> Iterator[Dealt[T]]:
    """Run every batch on some session; yield each batch's results in batch order.

    ``work(backend, items)`` recognizes one batch (see :data:`Work`); ``replace()`` starts a new
    backend for a lost session (``None``: a lost session is not replaced).
    """
    dealer: _Dealer[T] = _Dealer(sessions, work, replace)
    for number, items in enumerate(batches):
        dealer.tasks.put(_Task(number, items))
    waiting: dict[int, Dealt[T]] = {}
    next_batch = 0
    try:
        while next_batch < len(batches):
            if not dealer.alive() and dealer.done.empty():
                for number in range(next_batch, len(batches)):
                    lost = [Recognition.failed(ALL_LOST) for _ in batches[number]]
                    waiting.setdefault(number, Dealt(number, batches[number], lost, [None] * len(lost), None))
            else:
                try:
                    task, results, walls, failed, session, generation = dealer.done.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                current = generation == session.generation
                if current:
                    session.failed_in_a_row = session.failed_in_a_row + 1 if failed else 0
                replaced = current and failed and session.failed_in_a_row >= LOST_AFTER and dealer.lost(session)
                if failed and not task.retried and (replaced or dealer.alive(but=session)):
                    dealer.tasks.put(_Task(task.batch, task.items, True, None if replaced else session.index))
                    continue
                session.photos += len(task.items)
                waiting[task.batch] = Dealt(task.batch, task.items, results, walls, session.index)
            while next_batch in waiting:
                yield waiting.pop(next_batch)
                next_batch += 1
    finally:
        dealer.stop.set()
        for thread in dealer.threads:
            thread.join(timeout=1.0)
