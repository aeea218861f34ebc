"""newsletter: drip courses and newsletters from files kept in git."""

__version__ = "0.1.0"
