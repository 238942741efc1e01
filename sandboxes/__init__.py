"""Sandboxes for code execution (``pytest_nel.sandboxes``); built in a later issue."""
