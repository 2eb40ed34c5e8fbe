"""Fixtures for MariaDB and nginx: real servers on loopback, started and stopped by the suite."""
