"""Pickling for classes with __slots__ (Beam ships accumulators between workers)."""


class SlotsState:
    """Pickles a __slots__ class as the tuple of its slots, in order."""

    __slots__ = ()

    def __getstate__(self):
        return tuple(getattr(self, slot) for slot in self.__slots__)

    def __setstate__(self, state):
        for slot, value in zip(self.__slots__, state):
            setattr(self, slot, value)
