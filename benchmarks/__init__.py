"""Built-in benchmarks (``pytest_nel.benchmarks``), one module each; see ``nel list``."""
