"""Fixtures for the local runtime tests: service images to deploy."""
