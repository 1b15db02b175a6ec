"""Benchmarks: figures (JSON), each measured beside the limit it is bounded by, in one run.

Every benchmark runs on a private, fresh local stack (the local broker slows down over
its lifetime), so figures from different runs compare as well as a noisy box allows.
"""
