"""Test helpers shipped with pytest-nel: a fake OpenAI-compatible model server.

Import :class:`~pytest_nel.testing.fake_model.FakeModel` from its module; this package
imports nothing so that ``python -m pytest_nel.testing.fake_model`` runs cleanly.
"""
