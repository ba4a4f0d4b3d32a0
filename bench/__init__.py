"""Benchmarks: `python -m bench.run` measures the hub beside a bare baseline in one run."""
