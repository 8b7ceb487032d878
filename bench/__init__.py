"""Benchmarks that print figures; `python -m bench [name ...]` runs them (never tests)."""
