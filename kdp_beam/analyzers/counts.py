"""Row and null counts: the statistics every feature has."""


class CountAnalyzer:
    """Counts rows and nulls (missing values) of a column of any type.

    Accumulator: ``[count, null_count]``.
    """

    takes_dictionary = True  # a dictionary-encoded column's length and nulls are its rows'

    def create_accumulator(self):
        return [0, 0]

    def add_batch(self, acc, column):
        acc[0] += len(column)
        acc[1] += column.null_count
        return acc

    def merge_accumulators(self, accs):
        accs = iter(accs)
        merged = list(next(accs))
        for count, null_count in accs:
            merged[0] += count
            merged[1] += null_count
        return merged

    def finalize(self, acc):
        return {"count": acc[0], "null_count": acc[1]}

    def to_state(self, acc):
        return list(acc)

    def from_state(self, state):
        return [int(state[0]), int(state[1])]
