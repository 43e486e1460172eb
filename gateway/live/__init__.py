"""Live rooms: WHIP publish / WHEP play."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.apis import ApiMount
from gateway.live.recording import Recordings
from gateway.live.routes import create_blueprint
from gateway.live.schemas import render_error
from gateway.live.service import LiveService, LiveSession, room_key, session_key
from gateway.live.uploader import S3Uploader
from gateway.tasks import BackgroundTasks

if TYPE_CHECKING:
    from gateway.state import GatewayState

SERVICE_KEY = "live"


def _release_placements(state: GatewayState,
                        tasks: BackgroundTasks) -> Callable[[LiveSession, bool], None]:
    def on_forget(session: LiveSession, room_gone: bool) -> None:
        async def release() -> None:
            await state.placement.release(session_key(session.id))
            if room_gone:
                await state.placement.release(room_key(session.room))

        if state.placement.enabled:
            tasks.spawn(release())

    return on_forget


def ensure_service(state: GatewayState) -> LiveService:
    """The app's LiveService (`gateway_state().services["live"]`), created on first use."""
    live = state.services.get(SERVICE_KEY)
    if live is None:
        settings = state.settings
        uploader = S3Uploader(settings) if settings.upload_recordings else None
        recordings = (
            Recordings(state.media, settings.recordings_dir, uploader)
            if settings.record_enabled else None
        )
        live = LiveService(state.media, max_subs_per_room=settings.max_subs_per_room,
                           recordings=recordings)
        live.on_forget = _release_placements(state, BackgroundTasks())
        live.start()
        state.services[SERVICE_KEY] = live
    return live


async def _start(state: GatewayState) -> None:
    ensure_service(state)


async def _stop(state: GatewayState) -> None:
    live = state.services.pop(SERVICE_KEY, None)
    if live is not None:
        await live.stop()


MOUNT = ApiMount(
    name="live",
    create_blueprint=create_blueprint,
    render_error=render_error,
    prefixes=(
        "/api/whip/",
        "/api/whep/",
        "/api/rooms",
        "/api/records",
        "/api/admin/",
        "/api/bootstrap",
        "/records/",
        "/web/",
    ),
    exact_paths=("/healthz", "/metrics"),
    start=_start,
    stop=_stop,
)
