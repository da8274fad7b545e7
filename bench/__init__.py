"""Benchmarks: single commands that print markdown tables (see docs/BENCHMARKS.md). Not tests."""
