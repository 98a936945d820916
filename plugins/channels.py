"""Channel settings from the ``[channels]`` table of ``config.toml`` (slots per channel)."""

from __future__ import annotations

from recommender import CHANNEL_IDS, Channel, Config, does_not_block, hookimpl


@hookimpl(trylast=True)
@does_not_block
def channel_settings(channel_id: str, config: Config) -> Channel | None:
    if channel_id not in CHANNEL_IDS:
        return None
    return Channel(id=channel_id, slots=config.slots.get(channel_id, 1))
