"""Interceptors and the proxy (``pytest_nel.interceptors``); built in a later issue."""
