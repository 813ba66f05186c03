"""ElevenLabs TTS (voice/providers/elevenlabs.py) against our fake stream-input server."""

from __future__ import annotations

import pytest
from fake_elevenlabs import FakeElevenLabs

from byourside_server.voice.providers.elevenlabs import ElevenLabsError, ElevenLabsTTS

TEXT = "We have a table for two tonight."


async def test_a_sentence_renders_as_8_khz_speech_with_the_end_of_each_word():
    fake = await FakeElevenLabs().start()
    try:
        tts = ElevenLabsTTS("xi-test", voice_id="voice123", url=fake.url, language="fr")
        chunk = await tts.render(TEXT)
    finally:
        await fake.aclose()
    assert abs(chunk.duration_ms - 60 * len(TEXT)) <= 20  # the fake speaks 60 ms per character
    assert chunk.pcm.dtype.name == "int16" and abs(int(chunk.pcm.astype(int).max()) - 5000) < 300
    ends = chunk.word_end_ms
    assert ends is not None and len(ends) == len(TEXT.split()) and list(ends) == sorted(ends)
    assert abs(ends[-1] - chunk.duration_ms) <= 70
    assert chunk.heard(ends[2]) == "We have a"  # a reply cut after "a" is reported as heard up to it
    [request] = fake.requests
    assert request["query"] == {"model_id": "eleven_flash_v2_5", "output_format": "ulaw_8000", "language_code": "fr"}
    assert request["texts"] == [TEXT + " "]


async def test_a_refused_key_is_an_error_that_names_the_service_not_the_text():
    fake = await FakeElevenLabs().start()
    try:
        with pytest.raises(ElevenLabsError, match="HTTP 401") as raised:
            await ElevenLabsTTS("wrong", url=fake.url).render(TEXT)
        assert "table" not in str(raised.value)
    finally:
        await fake.aclose()


async def test_bys_tts_elevenlabs_builds_the_cloud_speaker_and_fails_at_start_up_without_a_key(tmp_path):
    from byourside_server.voice.factory import VoiceConfig, local_voice

    with pytest.raises(ValueError, match="BYS_ELEVENLABS_API_KEY"):
        local_voice(VoiceConfig(tts="elevenlabs"), tmp_path)
    voice = local_voice(VoiceConfig(tts="elevenlabs", elevenlabs_api_key="xi", elevenlabs_voice_id="v1"), tmp_path)
    speaker = voice._tts_factory()
    assert isinstance(speaker, ElevenLabsTTS) and speaker.voice_id == "v1" and speaker.model == "eleven_flash_v2_5"

