"""Benchmark harness of the nyc911 pipeline (`make bench`); not part of the test suite."""
