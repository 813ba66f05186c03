"""OpenAI TTS (voice/providers/openai_tts.py) against our fake of POST /v1/audio/speech."""

from __future__ import annotations

import pytest
from fake_openai_tts import FakeOpenAITTS

from byourside_server.voice.providers.openai_tts import OpenAITTS, OpenAITTSError

TEXT = "We have a table for two tonight."


async def test_a_sentence_renders_as_8_khz_speech_from_the_streamed_24_khz_pcm():
    fake = await FakeOpenAITTS().start()
    try:
        chunk = await OpenAITTS("sk-test", voice="coral", url=fake.url, language="fr-FR").render(TEXT)
    finally:
        await fake.aclose()
    assert abs(chunk.duration_ms - 60 * len(TEXT)) <= 20  # the fake speaks 60 ms per character
    assert chunk.pcm.dtype.name == "int16" and abs(int(chunk.pcm.astype(int).max()) - 5000) < 1000
    [request] = fake.requests
    assert request == {"model": "gpt-4o-mini-tts", "input": TEXT, "voice": "coral", "response_format": "pcm",
                       "instructions": "Speak in French, clearly and naturally, as on a phone call."}
    # No word timings from OpenAI: a reply cut short keeps the words whose share of the audio had played.
    assert chunk.word_end_ms is None
    assert chunk.heard(chunk.duration_ms * 12 // len(TEXT)) == "We have a"


async def test_a_streamed_reply_is_rendered_clause_then_sentence_one_request_each():
    fake = await FakeOpenAITTS().start()
    try:
        speech = OpenAITTS("sk-test", url=fake.url, model="tts-1").incremental(first_clause=True)
        for piece in ["Yes, we have", " a table for two.", " Shall I book it?"]:
            speech.push(piece)
        speech.end()
        chunks = [chunk async for chunk in speech]
    finally:
        await fake.aclose()
    assert [c.text for c in chunks] == ["Yes, we have a table for two.", "Shall I book it?"]
    assert [r["input"] for r in fake.requests] == ["Yes, we have a table for two.", "Shall I book it?"]
    assert all("instructions" not in r for r in fake.requests)  # tts-1 takes none


async def test_rate_limits_are_retried_and_a_refused_key_fails_without_naming_the_text():
    fake = await FakeOpenAITTS().start()
    try:
        fake.refuse = [429, 500]
        pcm = await OpenAITTS("sk-test", url=fake.url).synthesize(TEXT)
        assert len(pcm) > 0 and fake.refuse == []
        with pytest.raises(OpenAITTSError, match="HTTP 401, invalid_api_key") as refused:
            await OpenAITTS("wrong", url=fake.url).synthesize(TEXT)
        assert "table" not in str(refused.value)
        with pytest.raises(OpenAITTSError, match="HTTP 400"):
            await OpenAITTS("sk-test", url=fake.url, voice="marin", model="tts-1").synthesize(TEXT)
    finally:
        await fake.aclose()


async def test_a_call_picks_its_voice_from_the_catalogue():
    tts = OpenAITTS("sk-test", voice="echo")
    assert tts.for_call().voice == "echo"
    assert tts.for_call("Nova", "he").voice == "nova" and tts.for_call("Nova", "he").language == "he"
    assert tts.for_call("Bob").voice == "echo"  # a name the catalogue does not know: the configured voice


async def test_bys_tts_openai_builds_the_cloud_speaker_and_fails_at_start_up_without_a_key(tmp_path):
    from byourside_server.voice.factory import VoiceConfig, local_voice

    with pytest.raises(ValueError, match="BYS_OPENAI_API_KEY"):
        local_voice(VoiceConfig(tts="openai", openai_api_key=None), tmp_path)
    voice = local_voice(VoiceConfig(tts="openai", openai_api_key="sk", openai_tts_voice="sage",
                                    openai_tts_url="http://127.0.0.1:9/v1/audio/speech"), tmp_path)
    speaker = voice._tts_factory()
    assert isinstance(speaker, OpenAITTS) and speaker.voice == "sage" and speaker.model == "gpt-4o-mini-tts"
    assert speaker.url == "http://127.0.0.1:9/v1/audio/speech"
