"""mediagate: five real-time media APIs at one base URL."""

__version__ = "0.1.0"
