"""Built-in benchmarks (``pytest_nel.benchmarks``), one module each.

See ``nel list``.
"""
