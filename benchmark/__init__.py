"""The harness: suites, stages, cache, executors and the ``overfit-bench`` command line."""
