"""SDP fix-ups applied to every answer the media core creates.

A browser that stops a transceiver (`RTCRtpTransceiver.stop()`, as apps do to close a pushed
track) offers that m-section with port 0 and leaves its mid out of the BUNDLE group. aiortc
answers it like any other section, with a port and inside BUNDLE, which browsers reject
("A BUNDLE group in answer contains a MID that was not in the offered group"). The answer is
corrected here: rejected sections keep port 0 and leave the BUNDLE group (RFC 8843 §7.3.3).
Calls clients (closing a pushed track) and WHEP viewers hit this.
"""

from __future__ import annotations

import re

_M_LINE = re.compile(r"^m=(\S+) (\d+)(/\d+)? (.*)$")


def _sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    lines = sdp.replace("\r\n", "\n").strip("\n").split("\n")
    session: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def _mid(section: list[str]) -> str | None:
    return next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)


def _rejected(section: list[str]) -> bool:
    match = _M_LINE.match(section[0])
    return match is not None and match.group(2) == "0"


def reject_stopped_sections(offer: str, answer: str) -> str:
    """Mirror the offer's rejected (port 0) m-sections in the answer."""
    _, offered = _sections(offer)
    rejected = {index for index, section in enumerate(offered) if _rejected(section)}
    if not rejected:
        return answer
    session, sections = _sections(answer)
    removed: set[str] = set()
    for index in rejected:
        if index >= len(sections):
            continue
        match = _M_LINE.match(sections[index][0])
        if match is None:
            continue
        kind, _port, count, formats = match.groups()
        sections[index][0] = f"m={kind} 0{count or ''} {formats}"
        mid = _mid(sections[index])
        if mid is not None:
            removed.add(mid)
    for number, line in enumerate(session):
        if line.startswith("a=group:BUNDLE"):
            kept = [mid for mid in line.split()[1:] if mid not in removed]
            session[number] = " ".join(["a=group:BUNDLE", *kept])
    lines = session + [line for section in sections for line in section]
    return "\r\n".join(lines) + "\r\n"
