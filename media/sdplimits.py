"""Size checks on client SDP before aiortc parses it.

aiortc's parser and `setRemoteDescription` run on the event loop, and several of their steps
grow faster than the SDP: each `a=rtcp-fb` line is attached to every codec it names (``*``:
all of the section's codecs), each `a=fmtp` and `a=ssrc` line searches the section's codecs or
ssrcs, and each m-section gets its own receiver with a bitrate estimator. A byte limit alone
let one 1 MB offer stall the loop for seconds, so every API checks the shape of client SDP
first. The check only counts (one pass over at most `max_lines` lines), so it is cheap even
on a 1 MB body.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .types import NegotiationError


class SdpTooLarge(NegotiationError):
    """The SDP exceeds one of the `SdpLimits`; the message names the limit."""


@dataclass(frozen=True)
class SdpLimits:
    max_sections: int = 16
    """m-sections per description."""
    max_lines: int = 1024
    """Lines in the whole description (a browser's audio+video offer has about 300)."""
    max_section_lines: int = 256
    """Lines in one m-section (a browser's video section has about 230)."""
    max_session_lines: int = 64
    """Lines before the first m-section."""
    max_line_length: int = 1024
    max_formats: int = 64
    """Payload types on one m-line, and `a=rtpmap` lines in one m-section."""
    max_codecs: int = 128
    """`a=rtpmap` lines in the whole description (aiortc copies each codec it matches)."""
    max_feedback: int = 256
    """`a=rtcp-fb` entries in one m-section once ``*`` is applied to every codec."""
    max_ssrcs: int = 32
    """Distinct ssrcs in one m-section's `a=ssrc` lines."""
    max_candidates: int = 32
    """`a=candidate` lines in the whole description (or in one trickle fragment)."""


def _refuse(what: str, found: int, limit: int) -> SdpTooLarge:
    return SdpTooLarge(f"SDP has {found} {what}; at most {limit} are accepted")


@dataclass
class _Section:
    lines: int = 0
    rtpmaps: Counter[str] = field(default_factory=Counter)
    feedback_pts: list[str] = field(default_factory=list)
    ssrcs: set[str] = field(default_factory=set)

    def check(self, limits: SdpLimits) -> None:
        codecs = sum(self.rtpmaps.values())
        if codecs > limits.max_formats:
            raise _refuse("a=rtpmap lines in an m-section", codecs, limits.max_formats)
        feedback = sum(codecs if pt == "*" else self.rtpmaps[pt] for pt in self.feedback_pts)
        if feedback > limits.max_feedback:
            raise _refuse("a=rtcp-fb entries in an m-section", feedback, limits.max_feedback)
        if len(self.ssrcs) > limits.max_ssrcs:
            raise _refuse("ssrcs in an m-section", len(self.ssrcs), limits.max_ssrcs)


def check_sdp(sdp: str, limits: SdpLimits) -> None:
    """Raise SdpTooLarge unless `sdp` is within `limits` (it may still be malformed)."""
    sections = sdp.count("\nm=") + sdp.startswith("m=")
    if sections > limits.max_sections:
        raise _refuse("m-sections", sections, limits.max_sections)
    total = sdp.count("\n") + 1
    if total > limits.max_lines:
        raise _refuse("lines", total, limits.max_lines)
    candidates = sdp.count("a=candidate:")
    if candidates > limits.max_candidates:
        raise _refuse("ICE candidates", candidates, limits.max_candidates)
    codecs = sdp.count("a=rtpmap:")
    if codecs > limits.max_codecs:
        raise _refuse("a=rtpmap lines", codecs, limits.max_codecs)
    lines = sdp.splitlines()
    longest = max(map(len, lines), default=0)
    if longest > limits.max_line_length:
        raise _refuse("characters in a line", longest, limits.max_line_length)
    session_lines = 0
    section: _Section | None = None
    for line in lines:
        if line.startswith("m="):
            if section is not None:
                section.check(limits)
            section = _Section()
            formats = len(line.split()) - 3
            if formats > limits.max_formats:
                raise _refuse("formats on an m-line", formats, limits.max_formats)
        if section is None:
            session_lines += 1
            if session_lines > limits.max_session_lines:
                raise _refuse("lines before the first m-section", session_lines,
                              limits.max_session_lines)
            continue
        section.lines += 1
        if section.lines > limits.max_section_lines:
            raise _refuse("lines in an m-section", section.lines, limits.max_section_lines)
        if line.startswith("a=rtpmap:"):
            section.rtpmaps[line[9:].split(" ", 1)[0]] += 1
        elif line.startswith("a=rtcp-fb:"):
            section.feedback_pts.append(line[10:].split(" ", 1)[0])
        elif line.startswith("a=ssrc:"):
            section.ssrcs.add(line[7:].split(" ", 1)[0])
    if section is not None:
        section.check(limits)
