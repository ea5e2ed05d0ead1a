"""The artifact bundle: a versioned, checksummed directory of JSON statistics
(docs/bundle-format.md is the contract)."""
