"""Debian's Chromium for browser tests: one place for its path and flags."""

from __future__ import annotations

from gateway.paths import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    # host candidates as IP addresses (not mDNS names), so the gateway can pair with them
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
