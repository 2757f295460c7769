"""A throwaway simclust plugin that cannot be imported."""

raise RuntimeError("importfail is broken at import time")
