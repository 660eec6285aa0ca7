"""Benchmarks: figures printed side by side with the peers, as ratios. Run with ``make bench``."""
