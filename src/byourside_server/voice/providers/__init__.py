"""Cloud speech providers behind the voice ports (voice/ports.py), one module each, chosen by BYS_TTS."""
