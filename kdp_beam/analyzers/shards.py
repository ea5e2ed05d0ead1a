"""Which of N shards a token belongs to: a stable hash, vectorised over an Arrow array.

The keyed vocabulary path sends each token to one shard, so that the counts of a huge
vocabulary are spread over workers; label-aware features put each row in one of k folds
by the same hash of its row key (kdp_beam.analyzers.labels.fold_of). The hash must be the
same in every process and on every machine (Python's own str hash is salted per process),
and cheap: it is computed with numpy over the Arrow buffers, never per value in Python.
"""

import numpy as np
import pyarrow as pa

_MULTIPLIER = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime
_MIX = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3's fmix64 constant


def _mix(h):
    """MurmurHash3's 64-bit finaliser: spreads every input bit over the low bits."""
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= _MIX
        h ^= h >> np.uint64(33)
    return h


def _string_hashes(array):
    """A polynomial hash of each string's UTF-8 bytes (sum of byte * P^position)."""
    array = array.cast(pa.large_string())  # int64 offsets whatever the input
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8) if array.buffers()[2] else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    start, stop = int(offsets[0]), int(offsets[-1])
    hashes = lengths.astype(np.uint64)  # the length alone for empty strings
    if stop > start:
        starts = offsets[:-1] - start
        position = np.arange(stop - start) - np.repeat(starts, lengths)
        powers = np.ones(int(lengths.max()), dtype=np.uint64)
        with np.errstate(over="ignore"):
            np.multiply.accumulate(np.full(len(powers), _MULTIPLIER), out=powers)
            terms = (data[start:stop].astype(np.uint64) + np.uint64(1)) * powers[position]
            non_empty = lengths > 0
            hashes[non_empty] += np.add.reduceat(terms, starts[non_empty])
    return hashes


def stable_hashes(values):
    """A 64-bit hash (numpy uint64) of each value of a non-null string or integer Arrow
    array, the same on every machine and in every process."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.uint64)
    if pa.types.is_integer(values.type):
        hashes = values.to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64).copy()
    else:
        hashes = _string_hashes(values)
    return _mix(hashes)


def token_shards(tokens, shards):
    """The shard (0..shards-1) of each token of a non-null string or integer Arrow array."""
    return (stable_hashes(tokens) % np.uint64(shards)).astype(np.int64)
