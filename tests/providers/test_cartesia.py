"""Cartesia TTS (voice/providers/cartesia.py) against our fake of its WebSocket protocol."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from fake_cartesia import FakeCartesia
from fake_elevenlabs import buzz8k

from byourside_server.voice.providers.cartesia import (
    CartesiaError,
    CartesiaSpeech,
    CartesiaTTS,
)

TEXT = "We have a table for two tonight."


async def test_a_sentence_renders_as_8_khz_speech_with_the_end_of_each_word():
    fake = await FakeCartesia().start()
    try:
        chunk = await CartesiaTTS("car-test", url=fake.url, language="fr-FR").render(TEXT)
    finally:
        await fake.aclose()
    assert abs(chunk.duration_ms - 60 * len(TEXT)) <= 20  # the fake speaks 60 ms per character
    assert chunk.pcm.dtype == np.int16 and abs(int(chunk.pcm.astype(int).max()) - 5000) < 300
    ends = chunk.word_end_ms
    assert ends is not None and len(ends) == len(TEXT.split()) and list(ends) == sorted(ends)
    assert abs(ends[-1] - chunk.duration_ms) <= 5
    assert chunk.heard(ends[2]) == "We have a"  # a reply cut after "a" is reported as heard up to it
    [socket] = fake.sockets
    assert socket["version"] == "2025-04-16"
    [request] = socket["messages"]
    assert request["transcript"] == TEXT and request["continue"] is False and request["add_timestamps"] is True
    assert request["language"] == "fr" and request["model_id"] == "sonic-3"
    assert request["voice"] == {"mode": "id", "id": "f786b574-daa5-4673-aa0c-cbe3e8534c02"}
    assert request["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000}


async def test_a_streamed_reply_is_one_context_fed_as_it_arrives_and_cut_at_word_ends():
    fake = await FakeCartesia().start()
    pieces = ["We have", " a table", " for two tonight.", " Shall I", " book it?"]
    try:
        speech = CartesiaTTS("car-test", url=fake.url).incremental(first_clause=True)
        assert isinstance(speech, CartesiaSpeech)
        for piece in pieces:
            speech.push(piece)
        speech.end()
        chunks = [chunk async for chunk in speech]
    finally:
        await fake.aclose()
    [socket] = fake.sockets
    sent = socket["messages"]
    assert [m["transcript"] for m in sent] == [*pieces, ""]
    assert [m["continue"] for m in sent] == [True] * len(pieces) + [False]
    assert len({m["context_id"] for m in sent}) == 1
    assert fake.rendered == ["We have a table for two tonight.", "Shall I book it?"]  # a sentence at a time
    assert " ".join(c.text for c in chunks) == "We have a table for two tonight. Shall I book it?"
    assert speech.text == "".join(pieces)
    total = sum(c.duration_ms for c in chunks)
    assert abs(total - 60 * (len(fake.rendered[0]) + len(fake.rendered[1]))) <= 20
    for chunk in chunks:  # every chunk's word ends are its own, and each chunk ends with its last word
        assert chunk.word_end_ms is not None and len(chunk.word_end_ms) == len(chunk.text.split())
        assert list(chunk.word_end_ms) == sorted(chunk.word_end_ms)
        assert abs(chunk.word_end_ms[-1] - chunk.duration_ms) <= 5


async def test_a_reply_cut_short_cancels_the_context_and_keeps_the_words_heard():
    release = asyncio.Event()

    async def slow_second_sentence(text: str) -> np.ndarray:
        if text.startswith("Shall"):
            await release.wait()  # still generating when the callee cuts in
        return await buzz8k(text)

    fake = await FakeCartesia(speak=slow_second_sentence).start()
    try:
        speech = CartesiaTTS("car-test", url=fake.url).incremental()
        speech.push("We have a table for two tonight. Shall I book it?")
        speech.end()
        chunks = speech.__aiter__()
        heard = []
        while not heard or not heard[-1].text.endswith("tonight."):  # the first sentence, as it arrives
            heard.append(await chunks.__anext__())
        assert " ".join(c.text for c in heard) == "We have a table for two tonight."
        last = heard[-1]
        assert last.heard(last.word_end_ms[0]) == last.text.split()[0]
        await chunks.aclose()  # the callee talked over it: the engine stops reading
        for _ in range(200):
            if fake.cancelled:
                break
            await asyncio.sleep(0.05)
        assert fake.cancelled == [fake.sockets[0]["messages"][0]["context_id"]]
    finally:
        release.set()
        await fake.aclose()


async def test_a_refused_key_and_a_bad_request_are_errors_that_name_the_service_not_the_text():
    fake = await FakeCartesia().start()
    try:
        with pytest.raises(CartesiaError, match="HTTP 401") as refused:
            await CartesiaTTS("wrong", url=fake.url).render(TEXT)
        assert "table" not in str(refused.value)
        with pytest.raises(CartesiaError, match="400"):
            await CartesiaTTS("car-test", url=fake.url, language="xx").render(TEXT)
        speech = CartesiaTTS("wrong", url=fake.url).incremental()
        speech.push(TEXT)
        speech.end()
        with pytest.raises(CartesiaError, match="HTTP 401"):
            [chunk async for chunk in speech]
    finally:
        await fake.aclose()


async def test_a_call_picks_its_voice_and_language_from_the_catalogue():
    tts = CartesiaTTS("car-test", voice_id="custom-voice", language="en")
    assert tts.for_call().voice_id == "custom-voice"
    assert tts.for_call("Ronald", "he-IL").voice_id == "5ee9feff-1265-424a-9d7f-8e4d431a12c7"
    assert tts.for_call("Ronald", "he-IL").language == "he"
    assert tts.for_call("nova").voice_id == "6f84f4b8-58a2-430c-8c79-688dad597532"  # contract name -> Brooke


async def test_bys_tts_cartesia_builds_the_cloud_speaker_and_fails_at_start_up_without_a_key(tmp_path):
    from byourside_server.voice.factory import VoiceConfig, local_voice

    with pytest.raises(ValueError, match="BYS_CARTESIA_API_KEY"):
        local_voice(VoiceConfig(tts="cartesia"), tmp_path)
    voice = local_voice(VoiceConfig(tts="cartesia", cartesia_api_key="k", cartesia_voice_id="v1",
                                    stt_language="de"), tmp_path)
    speaker = voice._tts_factory()
    assert isinstance(speaker, CartesiaTTS) and speaker.voice_id == "v1" and speaker.model == "sonic-3"
    assert speaker.language == "de" and speaker.version == "2025-04-16"


async def test_a_whole_text_streams_through_the_same_context_path():
    fake = await FakeCartesia().start()
    try:
        chunks = [chunk async for chunk in CartesiaTTS("car-test", url=fake.url).stream("Hello there. Goodbye.")]
        empty = CartesiaTTS("car-test", url=fake.url).incremental()
        empty.end()
        assert [chunk async for chunk in empty] == []  # nothing to say: no generation at all
    finally:
        await fake.aclose()
    assert " ".join(c.text for c in chunks) == "Hello there. Goodbye."
    assert len(fake.sockets) == 1
