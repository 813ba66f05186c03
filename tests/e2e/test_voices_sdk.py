"""The voice catalogue through the Python SDK, against a real ``byourside serve`` (local voice and a cloud TTS)."""

from __future__ import annotations

import byourside
import pytest
from e2e_server import start_server


@pytest.mark.parametrize(("extra", "names", "providers"), [
    ({}, ["joe", "espeak"], {"piper", "espeak"}),  # Piper in English, espeak-ng in the other languages
    ({"BYS_TTS": "cartesia", "BYS_CARTESIA_API_KEY": "car-unused"},
     ["Katie", "Jacqueline", "Brooke", "Ronald", "Jordan", "Keith"], {"cartesia"}),
])
def test_list_voices_names_what_place_call_accepts(tmp_path, extra, names, providers):
    running = start_server(tmp_path, None, "--no-workers", **extra)
    try:
        client = byourside.Client(running.new_key(), base_url=running.base_url)
        catalogue = client.list_voices()
        assert [v["name"] for v in catalogue["voices"]] == names
        assert {v["provider"] for v in catalogue["voices"]} == providers
        assert catalogue["default"] == "alloy" and "alloy" in catalogue["aliases"]
        placed = client.place_call("+14155550123", "Ask for the opening hours.", voice=names[-1])
        assert placed["voice"] == names[-1]
        with pytest.raises(byourside.ByoursideError) as refused:
            client.place_call("+14155550123", "Ask for the opening hours.", voice="Bob")
        assert refused.value.status == 400 and refused.value.code == "invalid_voice"
        with pytest.raises(byourside.ByoursideError) as unauthorised:
            byourside.Client("bys_ak_wrong", base_url=running.base_url).list_voices()
        assert unauthorised.value.status == 401
    finally:
        running.stop()
