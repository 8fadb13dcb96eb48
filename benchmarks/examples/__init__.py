"""Examples for the benchmark suite: model factories of one's own (``python -m benchmarks run --model``)."""
