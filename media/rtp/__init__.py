"""Packet-level forwarding building blocks."""

from .header import ExtensionRemap, RtpHeader

__all__ = ["ExtensionRemap", "RtpHeader"]
