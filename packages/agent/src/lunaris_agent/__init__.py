"""Lunaris agent: reports the winget updates waiting on a Windows PC."""

__version__ = "0.1.0"
