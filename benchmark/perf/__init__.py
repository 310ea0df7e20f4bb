"""Speed and memory benchmarks, run by ``overfit-bench bench NAME`` (never as timed tests)."""
