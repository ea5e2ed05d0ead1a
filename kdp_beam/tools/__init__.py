"""The tools around bundles: merge (bundles of partitions -> the bundle of their union),
infer (a declaration per column from a sample), report (a bundle's HTML profile)."""
