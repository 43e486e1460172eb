"""Calls domain logic (apps, sessions, tracks, data channels); no Quart imports.

Empty until the Calls issue: apps, sessions and tracks arrive there.
"""
