"""Which compositor backends could drive a virtual output here: the live session's own
compositor (from the session environment and its binary), or gamescope wherever installed."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Which = Callable[[str], str | None]


@dataclass(frozen=True)
class Compositor:
    id: str
    label: str
    available: bool
    default: bool

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "label": self.label, "available": self.available,
                "default": self.default}


LABELS = {
    "kwin": "KDE Plasma (KWin)",
    "wlroots": "wlroots (Sway, Hyprland, river, ...)",
    "mutter": "GNOME (Mutter)",
    "gamescope": "gamescope (headless, nested)",
}
WLROOTS_DESKTOPS = {"sway", "hyprland", "river", "wayfire", "labwc", "niri", "dwl", "wlroots"}
WLROOTS_BINARIES = ("sway", "Hyprland", "river", "wayfire", "labwc")


def _desktops(env: Mapping[str, str]) -> set[str]:
    names: set[str] = set()
    for key in ("XDG_CURRENT_DESKTOP", "XDG_SESSION_DESKTOP", "DESKTOP_SESSION"):
        names.update(part.strip().lower() for part in env.get(key, "").split(":") if part.strip())
    return names


def session_compositor(env: Mapping[str, str], which: Which = shutil.which) -> str | None:
    """The compositor running the live graphical session, if it is one we can drive."""
    if "GAMESCOPE_WAYLAND_DISPLAY" in env and which("gamescope"):
        return "gamescope"
    wayland = bool(env.get("WAYLAND_DISPLAY"))
    desktops = _desktops(env)
    if wayland and (desktops & {"kde", "plasma", "plasmawayland"} or env.get("KDE_FULL_SESSION")):
        return "kwin" if which("kwin_wayland") else None
    if wayland and desktops & {"gnome", "gnome-classic", "ubuntu", "ubuntu:gnome"}:
        return "mutter" if which("gnome-shell") or which("mutter") else None
    if wayland and (env.get("SWAYSOCK") or env.get("HYPRLAND_INSTANCE_SIGNATURE")
                    or desktops & WLROOTS_DESKTOPS):
        return "wlroots" if any(which(b) for b in WLROOTS_BINARIES) else None
    return None


def detect(env: Mapping[str, str], which: Which = shutil.which) -> list[Compositor]:
    live = session_compositor(env, which)
    gamescope = which("gamescope") is not None
    available = {
        "kwin": live == "kwin",
        "wlroots": live == "wlroots",
        "mutter": live == "mutter",
        "gamescope": gamescope,
    }
    default = live if live is not None else ("gamescope" if gamescope else None)
    return [Compositor(cid, LABELS[cid], available[cid], cid == default) for cid in LABELS]
