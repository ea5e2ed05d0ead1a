"""The artifact bundle, a versioned, checksummed directory of JSON statistics
(docs/bundle-format.md is the contract):

- kdp_beam.bundle.layout: its file names and member paths, shared by both sides;
- kdp_beam.bundle.writer: ``write_bundle`` and the ``WriteArtifacts`` PTransform (on Beam
  workers, through Beam's FileSystems);
- kdp_beam.bundle.loader: ``load_bundle`` and ``Bundle``, verified on loading (training
  code: no Beam pipeline, no pickle);
- kdp_beam.bundle.checks: the loader's check of the statistics' values (each feature type
  checks its own with these helpers);
- kdp_beam.bundle.staging: a run's whole output written beside its destination and swapped
  in on success.
"""
