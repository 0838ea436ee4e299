"""Helpers of bench/compare, the side-by-side load harness (see bench/README.md)."""
