"""Benchmarks, run as modules: ``python -m bench.<name>``. Each prints JSON lines."""
