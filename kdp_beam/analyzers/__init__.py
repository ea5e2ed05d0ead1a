"""Statistics as plain, mergeable analyzers: no Beam, no TensorFlow.

Every analyzer has four verbs, the contract Beam's CombineFn and tf.Transform's combiners
share:

- ``create_accumulator()``: the state of an empty input;
- ``add_batch(acc, column)``: fold in one pyarrow column (a whole batch, vectorised);
- ``merge_accumulators(accs)``: combine states; associative and commutative, so results do
  not depend on sharding, batch size, worker count or order;
- ``finalize(acc)``: JSON-able statistics.

``DatasetAnalyzer`` fuses every feature's analyzers into one, fed one RecordBatch at a time,
so one read of the data serves all features; a multivalent feature's analyzers are fed
every value of its lists (kdp_beam.analyzers.multivalent), and the spec's label is
analysed in the same pass (kdp_beam.analyzers.labels; label-aware vocabularies:
kdp_beam.analyzers.label_tokens). ``kdp_beam.beam.analyze`` adapts it to Beam.
"""

from kdp_beam.analyzers.counts import CountAnalyzer
from kdp_beam.analyzers.dataset import DatasetAnalyzer, analyze_batches
from kdp_beam.analyzers.moments import MomentsAnalyzer
from kdp_beam.analyzers.quantiles import QuantilesAnalyzer
from kdp_beam.analyzers.vocabulary import VocabularyAnalyzer

__all__ = [
    "CountAnalyzer",
    "DatasetAnalyzer",
    "MomentsAnalyzer",
    "QuantilesAnalyzer",
    "VocabularyAnalyzer",
    "analyze_batches",
]
