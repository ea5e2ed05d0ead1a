"""Transform: raw batches -> the model's encodings, written as a dataset (docs/transform.md)."""
