"""Benchmarks: the bundle side by side with the original design and the usual libraries (``bash bench/run.sh``)."""
