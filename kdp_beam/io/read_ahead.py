"""Reading ahead in a thread: pyarrow parses the next batch (it releases the GIL while it
parses and decodes) while the caller analyses the one before, so a reader keeps two cores
busy where it kept one. The items reach the caller in order, and so does an error."""

import contextlib
import queue
import threading

_END = object()
_POLL_SECONDS = 0.05  # how often a blocked producer looks whether the consumer left


@contextlib.contextmanager
def read_ahead(produce, depth=1):
    """A context manager giving an iterator of `produce()`'s items, made by a thread: while
    the caller works on one item, at most `depth` more wait made and one is being made. The first exception `produce` raises (pyarrow's
    errors included) is raised to the caller after the items before it. On leaving the
    block, however early, the thread is stopped and joined, so what `produce` reads from
    (an open file) may be closed right after.

    Only the producing thread touches `produce`'s iterator; whatever the caller does with
    an item (Beam metrics, which are per thread, progress) stays in the caller's thread.
    """
    items = queue.Queue(depth)
    leaving = threading.Event()

    def put(item):
        while not leaving.is_set():
            try:
                items.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for item in produce():
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as e:  # noqa: BLE001 - handed to the caller, in order
            put((_END, e))

    def consume():
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item

    thread = threading.Thread(target=run, name="kdp_beam-read-ahead", daemon=True)
    try:
        thread.start()  # inside: a Ctrl-C while it starts still tells the thread to stop
        yield consume()
    finally:
        leaving.set()
        if thread.ident is not None:  # started
            thread.join()
