"""Audio primitives for telephone lines: G.711 codecs and resampling, in numpy.

PCM is always signed 16-bit mono (``numpy.int16`` arrays). G.711 (PCMU
mu-law and PCMA A-law) is what every SIP trunk speaks; the codecs are table
driven so encoding a 20 ms frame is one array lookup. ``audioop`` would do the
same but is deprecated and gone in Python 3.13.
"""

from __future__ import annotations

import numpy as np

TELEPHONE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = TELEPHONE_RATE * FRAME_MS // 1000  # 160 samples, 160 G.711 bytes

_ULAW_BIAS = 0x84


def _ulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def _ulaw_encode_all() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, as in the ITU reference coder
    mask = np.where(x < 0, 0x7F, 0xFF)
    x = np.minimum(np.abs(x), 8159) + (_ULAW_BIAS >> 2)
    ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    seg = np.searchsorted(ends, x)
    value = np.where(seg >= 8, 0x7F, (seg << 4) | ((x >> (seg + 1)) & 0x0F))
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _alaw_encode_all() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    x = np.where(x >= 0, x, -x - 1)
    ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    seg = np.searchsorted(ends, x)  # first segment whose end >= x
    shift = np.where(seg < 2, 1, seg)
    value = (np.minimum(seg, 7) << 4) | ((x >> shift) & 0x0F)
    value = np.where(seg >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8)


_ULAW_DEC = _ulaw_decode_table()
_ULAW_ENC = _ulaw_encode_all()
_ALAW_DEC = _alaw_decode_table()
_ALAW_ENC = _alaw_encode_all()


def ulaw_encode(pcm: np.ndarray) -> bytes:
    return _ULAW_ENC[pcm.astype(np.int32) + 32768].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: np.ndarray) -> bytes:
    return _ALAW_ENC[pcm.astype(np.int32) + 32768].tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)]


class G711:
    """One G.711 variant by its RTP static payload type (0 = PCMU, 8 = PCMA)."""

    def __init__(self, payload_type: int) -> None:
        if payload_type not in (0, 8):
            raise ValueError("G.711 payload type must be 0 (PCMU) or 8 (PCMA)")
        self.payload_type = payload_type
        self.name = "PCMU" if payload_type == 0 else "PCMA"
        self.encode = ulaw_encode if payload_type == 0 else alaw_encode
        self.decode = ulaw_decode if payload_type == 0 else alaw_decode
        self.silence = self.encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))


def _lowpass(samples: np.ndarray, cutoff: float, taps: int = 63) -> np.ndarray:
    """Windowed-sinc FIR low-pass; ``cutoff`` is a fraction of the sample rate (< 0.5)."""
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(2 * cutoff * n) * np.hamming(taps)
    kernel /= kernel.sum()
    return np.convolve(samples, kernel, mode="same")


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample 16-bit PCM; low-passes before decimating so speech does not alias."""
    if from_rate == to_rate or len(pcm) == 0:
        return pcm.astype(np.int16, copy=False)
    x = pcm.astype(np.float64)
    if to_rate < from_rate:
        x = _lowpass(x, 0.45 * to_rate / from_rate)
    count = int(round(len(x) * to_rate / from_rate))
    positions = np.arange(count) * (from_rate / to_rate)
    y = np.interp(positions, np.arange(len(x)), x)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM to float32 in [-1, 1] (what speech models take)."""
    return pcm.astype(np.float32) / 32768.0
