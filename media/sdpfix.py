"""SDP fix-ups applied to every answer the media core creates, and the offer normalisation
that tells bundled sections from rejected ones (RFC 8843/9143).

A port of 0 means two different things in an offer:

* **rejected**: a browser that stops a transceiver (`RTCRtpTransceiver.stop()`, as apps do to
  close a pushed track) offers that m-section with port 0 and leaves its mid out of the
  BUNDLE group. aiortc ignores offered ports and answers it like any other section, with a
  port and inside BUNDLE, which browsers reject ("A BUNDLE group in answer contains a MID
  that was not in the offered group"). `reject_stopped_sections` corrects the answer:
  rejected sections keep port 0 and leave the BUNDLE group (RFC 8843 §7.3.3).
* **bundle-only**: an offerer that only wants a section if it is bundled (GStreamer
  `webrtcbin` with `max-bundle`, JSEP's `max-bundle` policy) offers it with port 0,
  `a=bundle-only` and its mid in the BUNDLE group (RFC 8843 §6). That section is accepted:
  it is answered inside the group on the bundle's transport, as aiortc does anyway.
  `accept_bundle_only` rewrites such a section's port to the bundle's, for code that reads
  offered ports (the WHIP/WHEP offer summary) before aiortc parses the offer.

aiortc also puts every mid of its answer in a BUNDLE group even when the offer has none
(GStreamer with `bundle-policy=none`); the answer must not add a group the offerer did not
ask for (RFC 8843 §7.3), and aiortc gives such sections their own transports anyway.
"""

from __future__ import annotations

import re

_M_LINE = re.compile(r"^m=(\S+) (\d+)(/\d+)? (.*)$")
DISCARD_PORT = 9


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


def _join(session: list[str], sections: list[list[str]]) -> str:
    lines = session + [line for section in sections for line in section]
    return "\r\n".join(lines) + "\r\n"


def _mid(section: list[str]) -> str | None:
    return next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)


def _port(section: list[str]) -> int | None:
    match = _M_LINE.match(section[0])
    return int(match.group(2)) if match is not None else None


def _bundle_groups(session: list[str]) -> list[list[str]]:
    return [line.split()[1:] for line in session if line.startswith("a=group:BUNDLE")]


def _bundle_only(section: list[str], groups: list[list[str]]) -> bool:
    """Port 0 with `a=bundle-only` and a mid in a BUNDLE group: bundled, not rejected."""
    mid = _mid(section)
    return (
        _port(section) == 0
        and any(line.strip() == "a=bundle-only" for line in section)
        and any(mid in group for group in groups)
    )


def _rejected(section: list[str], groups: list[list[str]]) -> bool:
    return _port(section) == 0 and not _bundle_only(section, groups)


def _with_port(section: list[str], port: int) -> None:
    match = _M_LINE.match(section[0])
    if match is not None:
        kind, _old, count, formats = match.groups()
        section[0] = f"m={kind} {port}{count or ''} {formats}"


def accept_bundle_only(offer: str) -> str:
    """The offer with each bundle-only section's port set to its BUNDLE group's port (the
    offerer-tagged section's: the first of the group with a port; else the discard port).
    Returns `offer` itself when it has no bundle-only section."""
    session, sections = _sections(offer)
    groups = _bundle_groups(session)
    bundled = [section for section in sections if _bundle_only(section, groups)]
    if not bundled:
        return offer
    by_mid = {_mid(section): section for section in sections}
    for section in bundled:
        group = next(g for g in groups if _mid(section) in g)
        ports = (_port(by_mid[mid]) for mid in group if mid in by_mid)
        _with_port(section, next((p for p in ports if p), DISCARD_PORT))
    return _join(session, sections)


def reject_stopped_sections(offer: str, answer: str) -> str:
    """Mirror the offer's rejected m-sections (port 0, not bundle-only) in the answer, and
    leave out the BUNDLE group if the offer has none."""
    offer_session, offered = _sections(offer)
    groups = _bundle_groups(offer_session)
    rejected = {index for index, section in enumerate(offered) if _rejected(section, groups)}
    if groups and not rejected:
        return answer
    session, sections = _sections(answer)
    if not groups:
        session = [line for line in session if not line.startswith("a=group:BUNDLE")]
    removed: set[str] = set()
    for index in rejected:
        if index >= len(sections) or _M_LINE.match(sections[index][0]) is None:
            continue
        _with_port(sections[index], 0)
        mid = _mid(sections[index])
        if mid is not None:
            removed.add(mid)
    for number, line in enumerate(session):
        if line.startswith("a=group:BUNDLE"):
            kept = [mid for mid in line.split()[1:] if mid not in removed]
            session[number] = " ".join(["a=group:BUNDLE", *kept])
    return _join(session, sections)
