"""JoinParts: several PCollections, each complete, as one element, by a join rather than side
inputs (a side input derived from the read makes a less complete runner, Beam's Dask runner,
compute the read again for each)."""

import apache_beam as beam


class JoinParts(beam.PTransform):
    """{tag: PCollection} -> one {tag: [its elements]}, once every part is complete: a
    GroupByKey of the elements tagged and keyed by None (what CoGroupByKey does, in fewer
    steps). An empty part is an empty list; no element at all gives no output."""

    def expand(self, parts):
        tagged = [
            part | f"Tag_{tag}" >> beam.Map(lambda element, tag: (None, (tag, element)), tag)
            for tag, part in parts.items()
        ]
        tags = list(parts)
        return (
            tagged
            | "Flatten" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "ByTag" >> beam.MapTuple(lambda _, elements: _by_tag(tags, elements))
        )


def _by_tag(tags, elements):
    found = {tag: [] for tag in tags}
    for tag, element in elements:
        found[tag].append(element)
    return found
