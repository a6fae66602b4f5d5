"""An iterator's items made one ahead in a background thread.

Reading a Parquet batch (decompression, decoding, conversion to pandas) releases the GIL, so
while one batch's design is built and spilled the next can be read on the other core.
:func:`prefetched` runs the iterator in a thread and hands its items over through a queue of
one: at most one item waits, one is being made and one is in use, whatever the number of items.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2


def prefetched(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items``, made one ahead in a background thread.

    The items come in order; an exception raised making one is raised here, in its place.
    Closing the returned generator (or dropping it) stops the thread and closes ``items``
    (in the thread that iterates it), so files it holds open are closed.
    """
    slot: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(message) -> bool:
        while not stop.is_set():
            try:
                slot.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put((_ITEM, item)):
                    return
            put((_END, None))
        except BaseException as exc:  # raised where the item was awaited
            put((_ERROR, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="multilogit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slot.get()
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join()
