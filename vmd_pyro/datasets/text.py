"""Character-level text in the text8 format: lowercase ``a-z`` and space, 27 symbols.

Two sources, both split into a training and a validation stream:

* ``text8``: the real file (``--data-path`` to ``text8`` or ``text8.zip``). It cannot be downloaded
  on this machine; get it from http://mattmahoney.net/dc/text8.zip (the zip holds one member,
  ``text8``, of exactly 100,000,000 bytes). The loader checks the size and the alphabet. Split as
  usual: the first 90M characters train, the next 5M validate (the last 5M, the test set, are unused).
* ``offline``: a corpus the project builds itself from English already on every Python install: the
  docstrings and comments of the standard library's ``.py`` sources, normalised to the same alphabet
  (:func:`normalise`). Deterministic for a given Python version; cached after the first build. Split
  90% / 10%.

Sequences are random crops of ``seq_len`` characters from a stream (256 in the published setting).
"""
from __future__ import annotations

import ast
import hashlib
import io
import os
import re
import sys
import sysconfig
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

ALPHABET = "abcdefghijklmnopqrstuvwxyz "
VOCAB = len(ALPHABET)                 # 27; the mask token is id 27
TEXT8_BYTES = 100_000_000
TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
TEXT8_SPLIT = (90_000_000, 95_000_000)   # train = [0, 90M), validation = [90M, 95M)
SOURCES = ("offline", "text8")

_LOOKUP = torch.full((256,), -1, dtype=torch.int16)
_LOOKUP[torch.tensor(list(ALPHABET.encode("ascii")))] = torch.arange(VOCAB, dtype=torch.int16)


def normalise(text: str) -> str:
    """text8-style normalisation: lowercase, every run of characters outside ``a-z`` (digits,
    punctuation, accented letters, newlines) becomes one space, no leading/trailing space. (text8
    itself also spells digits out; we drop them.)"""
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


def encode(text: str | bytes) -> torch.Tensor:
    """Characters -> ids ``0..26`` (uint8). Refuses anything outside the alphabet with the position
    of the first offender, so an un-normalised file fails loudly instead of training on garbage."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)
    ids = _LOOKUP[raw.int()]
    bad = (ids < 0).nonzero()
    if len(bad):
        pos = int(bad[0])
        raise ValueError(f"character {data[pos:pos + 1]!r} at offset {pos} is outside the text8 "
                         f"alphabet (a-z and space; {len(bad)} bad bytes in all): normalise first")
    return ids.to(torch.uint8)


_CHARS = torch.tensor(list((ALPHABET + "_").encode("ascii")), dtype=torch.uint8)


def decode(ids) -> str:
    """Ids -> characters (vectorised: text8 has 10^8 of them); ids outside ``0..26`` (the mask)
    print as ``_``."""
    ids = torch.as_tensor(ids).long().cpu().flatten()
    ids = torch.where((ids >= 0) & (ids < VOCAB), ids, torch.full_like(ids, VOCAB))
    return bytes(_CHARS[ids].numpy()).decode("ascii")


def read_text8(path: str | Path, expected_bytes: int = TEXT8_BYTES) -> bytes:
    """The raw text8 characters from ``text8`` or ``text8.zip``, checked for size and alphabet.
    (``expected_bytes`` is for tests on small files the project writes itself.)"""
    path = Path(path)
    where = (f"get it from {TEXT8_URL} (no internet here: copy it in by hand), or use "
             f"--corpus offline")
    if not path.is_file():
        raise ValueError(f"text8 file {str(path)!r} not found; {where}")
    if zipfile.is_zipfile(path):
        names, size, data = [], None, None
        try:  # a damaged archive can fail in many ways (BadZipFile, zlib.error, EOFError, ...)
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                size = archive.getinfo("text8").file_size if "text8" in names else None
                if size == expected_bytes:
                    data = archive.read("text8")
        except Exception as err:  # noqa: BLE001 - every one of them means "damaged zip"
            message = " ".join(str(err).split())[:200]
            raise ValueError(f"{str(path)!r} is a damaged zip ({type(err).__name__}: {message}); "
                             f"{where}") from None
        if size is None:
            raise ValueError(f"{str(path)!r} has no member 'text8' (members: {names[:5]}); {where}")
        if size != expected_bytes:
            raise ValueError(f"member text8 of {str(path)!r} has {size:,} bytes, expected "
                             f"{expected_bytes:,}: not the text8 file; {where}")
    elif path.suffix == ".zip":
        raise ValueError(f"{str(path)!r} is not a valid zip file; {where}")
    else:
        size = path.stat().st_size
        if size != expected_bytes:
            raise ValueError(f"{str(path)!r} has {size:,} bytes, expected {expected_bytes:,}: "
                             f"not the text8 file; {where}")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ValueError(f"cannot read {str(path)!r} ({err.strerror or err})") from None
    if not data:  # only reachable with a test's expected_bytes of 0: no corpus to learn from
        raise ValueError(f"{str(path)!r} holds no text; {where}")
    encode(data)  # alphabet check
    return data


def _docstrings_and_comments(source: str) -> list[str]:
    texts = []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return texts
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                texts.append(doc)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                texts.append(tok.string.lstrip("#"))
    except (tokenize.TokenError, SyntaxError):
        pass
    return texts


def build_offline_corpus(max_chars: int | None = None) -> str:
    """Normalised docstrings and comments of the standard library (tests and site-packages left
    out), files in sorted order, joined by spaces."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idle_test", "lib2to3"}
    pieces, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for text in _docstrings_and_comments(source):
            words = normalise(text)
            if len(words) > 1:
                pieces.append(words)
                total += len(words) + 1
        if max_chars and total >= max_chars:
            break
    corpus = " ".join(pieces)
    return corpus[:max_chars] if max_chars else corpus


def offline_corpus(cache_dir: str | Path | None = None, max_chars: int | None = None) -> str:
    """:func:`build_offline_corpus`, cached in ``cache_dir`` (default ``~/.cache/vmd-pyro``) under
    a name that carries the Python version (the corpus depends on it). With ``max_chars`` and no
    cache, only that much is built (quick, not cached)."""
    cache = Path(cache_dir or Path.home() / ".cache" / "vmd-pyro")
    version = ".".join(map(str, sys.version_info[:3]))
    path = cache / f"stdlib-docs-{version}.txt"
    checksum = path.with_name(path.name + ".sha256")
    if path.is_file():
        corpus, problem = _read_corpus_cache(path, checksum)
        if corpus is not None:
            return corpus[:max_chars]
        print(f"corpus cache {str(path)!r} {problem}: building the corpus afresh", file=sys.stderr,
              flush=True)
    if max_chars:
        return build_offline_corpus(max_chars)
    corpus = build_offline_corpus()
    cache.mkdir(parents=True, exist_ok=True)
    # The corpus, then its checksum (the corpus file keeps its plain format, so older versions
    # still read it); a crash between the two leaves no checksum: rebuilt next time.
    for target, content in ((path, corpus), (checksum, _sha256(corpus) + "\n")):
        tmp = target.with_suffix(f".{os.getpid()}.tmp")  # parallel runs may build it at once
        tmp.write_text(content, encoding="ascii")
        tmp.replace(target)
    return corpus


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _read_corpus_cache(path: Path, checksum: Path):
    """``(corpus, None)`` when the cache matches its checksum file, else ``(None, the problem)``."""
    try:
        corpus = path.read_bytes().decode("ascii")
        expected = checksum.read_text(encoding="ascii").strip() if checksum.is_file() else None
    except (OSError, UnicodeDecodeError) as err:
        return None, f"is unreadable ({type(err).__name__})"
    if expected is None:
        return None, "has no checksum file (an older version or an interrupted build wrote it)"
    if _sha256(corpus) != expected:
        return None, "is damaged (its checksum does not match)"
    return corpus, None


@dataclass
class TextTask:
    """Training and validation character streams; ``sample`` draws random crops of ``seq_len``."""

    name: str
    train: torch.Tensor          # (N_train,) uint8 ids
    valid: torch.Tensor          # (N_valid,) uint8 ids
    seq_len: int = 256
    vocab_size: int = VOCAB
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.seq_len < 1:
            raise ValueError(f"--seq-len must be >= 1, got {self.seq_len}")
        for split in ("train", "valid"):
            if len(getattr(self, split)) < self.seq_len:
                raise ValueError(f"the {split} split has {len(getattr(self, split))} characters, "
                                 f"fewer than --seq-len {self.seq_len}")

    def to(self, device) -> "TextTask":
        self.train, self.valid = self.train.to(device), self.valid.to(device)
        return self

    def _crops(self, stream, batch_size, generator):
        device = stream.device
        starts = torch.randint(0, len(stream) - self.seq_len + 1, (batch_size,),
                               generator=generator, device=device)
        x0 = stream[starts.unsqueeze(-1) + torch.arange(self.seq_len, device=device)].long()
        return x0, torch.ones_like(x0, dtype=torch.bool)

    def sample(self, batch_size: int, generator=None):
        """``(x0, maskable)`` crops from the training stream."""
        return self._crops(self.train, batch_size, generator)

    def sample_valid(self, batch_size: int, generator=None):
        """``(x0, maskable)`` crops from the validation stream."""
        return self._crops(self.valid, batch_size, generator)


def make_text(source: str = "offline", *, data_path: str | None = None, seq_len: int = 256,
              max_chars: int | None = None, cache_dir: str | None = None) -> TextTask:
    """Build the text task from ``source`` (:data:`SOURCES`)."""
    if source == "text8":
        if data_path is None:
            raise ValueError(f"--corpus text8 needs --data-path (text8 or text8.zip from "
                             f"{TEXT8_URL})")
        ids = encode(read_text8(data_path))
        train, valid = ids[:TEXT8_SPLIT[0]], ids[TEXT8_SPLIT[0]:TEXT8_SPLIT[1]]
        info = {"source": "text8", "path": str(data_path)}
    elif source == "offline":
        text = offline_corpus(cache_dir, max_chars)
        ids = encode(text)
        cut = int(0.9 * len(ids))
        train, valid = ids[:cut], ids[cut:]
        info = {"source": "offline: normalised docstrings and comments of the Python "
                          f"{sys.version.split()[0]} standard library",
                "sha256": hashlib.sha256(text.encode("ascii")).hexdigest()}
    else:
        raise ValueError(f"unknown corpus {source!r}; choose from {', '.join(SOURCES)}")
    info.update(train_chars=len(train), valid_chars=len(valid))
    return TextTask(source, train, valid, seq_len, info=info)


def char_entropy_bits(ids: torch.Tensor) -> float:
    """Entropy (bits) of the character frequencies in ``ids``: a collapse check for samples."""
    counts = torch.bincount(ids.flatten().long(), minlength=VOCAB).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log2()).sum())


def word_validity(samples: torch.Tensor, vocabulary: set[str]) -> float:
    """Fraction of the complete words in generated text (the first and last word of each sample
    may be cut by the crop and are skipped) that occur in ``vocabulary``."""
    hits = total = 0
    for row in samples.tolist():
        words = decode(row).split(" ")[1:-1]
        hits += sum(w in vocabulary for w in words if w)
        total += sum(1 for w in words if w)
    return hits / total if total else float("nan")
