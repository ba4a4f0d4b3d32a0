"""Storage: one contract (`Store`) and its backends."""
