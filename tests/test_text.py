"""The text8-format data: normalisation, the alphabet check, the text8 loader's refusals (on small
files written here) and the offline corpus."""
import math
import random
import zipfile

import pytest
import torch

from vmd_pyro.datasets import text


def test_normalise_maps_everything_outside_a_to_z_to_single_spaces():
    assert text.normalise("  Hello,\n  World! 42 café--ÜBER ") == "hello world caf ber"
    assert text.normalise("...") == ""


def test_encode_decode_round_trip_and_ids():
    ids = text.encode("az z")
    assert ids.tolist() == [0, 25, 26, 25]
    assert text.decode(ids) == "az z"
    assert text.VOCAB == 27


@pytest.mark.parametrize("bad,offset", [("abc D", 4), ("ab.c", 2), ("x\ny", 1), ("caf\u00e9", 3)])
def test_encode_refuses_characters_outside_the_alphabet(bad, offset):
    with pytest.raises(ValueError, match=f"offset {offset} is outside the text8 alphabet"):
        text.encode(bad)


def _text8_like(n):
    return ("the quick brown fox jumps over the lazy dog " * (n // 44 + 1))[:n].encode("ascii")


def test_text8_loader_reads_a_plain_file_and_a_zip(tmp_path):
    data = _text8_like(1000)
    plain = tmp_path / "text8"
    plain.write_bytes(data)
    assert text.read_text8(plain, expected_bytes=1000) == data
    archive = tmp_path / "text8.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("text8", data)
    assert text.read_text8(archive, expected_bytes=1000) == data


def test_text8_loader_refuses_missing_wrong_size_bad_zip_and_bad_characters(tmp_path):
    with pytest.raises(ValueError, match="not found.*mattmahoney.net/dc/text8.zip"):
        text.read_text8(tmp_path / "nope")
    small = tmp_path / "text8"
    small.write_bytes(_text8_like(1000))
    with pytest.raises(ValueError, match="1,000 bytes, expected 100,000,000"):
        text.read_text8(small)
    garbage = tmp_path / "text8.zip"
    garbage.write_bytes(b"PK this is not a zip")
    with pytest.raises(ValueError, match="not a valid zip"):
        text.read_text8(garbage)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("enwik8", b"abc")
    with pytest.raises(ValueError, match="no member 'text8'"):
        text.read_text8(other)
    dirty = tmp_path / "dirty"
    dirty.write_bytes(b"hello World")
    with pytest.raises(ValueError, match="'W'.*offset 6"):
        text.read_text8(dirty, expected_bytes=11)
    with pytest.raises(ValueError, match="needs --data-path"):
        text.make_text("text8")
    with pytest.raises(ValueError, match="unknown corpus"):
        text.make_text("wiki")


def test_offline_corpus_is_in_the_alphabet_and_deterministic():
    a = text.build_offline_corpus(max_chars=3000)
    assert len(a) == 3000 and a == text.build_offline_corpus(max_chars=3000)
    assert text.encode(a).max() < text.VOCAB
    assert "  " not in a and len(set(a)) > 20


def test_crops_come_from_their_split():
    stream = "".join(text.ALPHABET[i % 26] for i in range(200))
    task = text.TextTask("t", text.encode(stream[:150]), text.encode(stream[150:]), seq_len=10)
    x0, maskable = task.sample(32, torch.Generator().manual_seed(0))
    assert x0.shape == (32, 10) and maskable.all()
    for row in x0.tolist():   # consecutive letters of the cyclic alphabet: contiguous crops
        assert all((b - a) % 26 == 1 for a, b in zip(row, row[1:]))
    with pytest.raises(ValueError, match="fewer than --seq-len"):
        text.TextTask("t", text.encode(stream[:150]), text.encode(stream[150:155]), seq_len=10)


def test_sample_statistics():
    uniform = torch.arange(27).repeat(10)
    assert text.char_entropy_bits(uniform) == pytest.approx(math.log2(27))
    samples = text.encode("xx the cat sat zzq end").unsqueeze(0)
    # inner words: the cat sat zzq -> 3 of 4 known
    assert text.word_validity(samples, {"the", "cat", "sat"}) == pytest.approx(0.75)


@pytest.mark.slow
def test_text_cli_end_to_end(tmp_path, capsys):
    """``run.py --task text`` on a small slice of the offline corpus: the JSON conventions hold."""
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "run_cli", Path(__file__).resolve().parent.parent / "experiments" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    out = tmp_path / "r.json"
    code = run.main(["--task", "text", "--corpus-chars", "20000", "--seq-len", "16",
                     "--arch", "transformer", "--hidden", "16", "--layers", "1", "--block-size", "4",
                     "--model", "mdm", "vmd", "--steps", "3", "--batch-size", "4", "--eval-batches",
                     "1", "--iw-samples", "2", "--num-samples", "3", "--quiet", "--threads", "1",
                     "--out", str(out)])
    assert code == 0
    runs = json.loads(out.read_text())["runs"]
    assert {(r["model"], r["nfe"]) for r in runs} == {(m, n) for m in ("mdm", "vmd") for n in (16, 4)}
    for r in runs:
        assert r["ppl_bound"] == pytest.approx(2 ** r["bits_per_char"])
        # the perplexity bound comes from B_T at the row's NFE, 4 blocks of 4
        assert r["bits_per_char"] == r["nll_bound_bits"]
        assert r["bound_generator"].startswith(f"T={r['nfe']}, order=random")
        assert r["bound_generator"].endswith("blocks of 4")
        assert r["nfe_per_block"] == r["nfe"] // 4 and len(r["samples"][0]) == 16
        assert set("".join(r["samples"])) <= set(text.ALPHABET)
    assert "objective_bits: VMD's training objective J, not a bound" in capsys.readouterr().out
    assert run.main(["--task", "text", "--corpus", "text8", "--quiet"]) == 2   # no --data-path


# --- damaged caches and fuzzed text8 files ---


def test_a_damaged_corpus_cache_is_detected_and_rebuilt(tmp_path, monkeypatch, capsys):
    corpus = "the corpus as built " * 50
    builds = []
    monkeypatch.setattr(text, "build_offline_corpus",
                        lambda max_chars=None: builds.append(1) or corpus)
    assert text.offline_corpus(tmp_path) == corpus and len(builds) == 1
    assert text.offline_corpus(tmp_path) == corpus and len(builds) == 1  # from the cache
    cached = next(tmp_path.glob("stdlib-docs-*.txt"))
    checksum = cached.with_name(cached.name + ".sha256")
    damages = {"flip": lambda: cached.write_text(corpus.replace("built", "bulit", 1)),
               "truncate": lambda: cached.write_text(corpus[:100]),
               "non-ascii": lambda: cached.write_bytes(b"\xff" * 10),
               "no checksum": checksum.unlink}
    for name, damage in damages.items():
        damage()
        capsys.readouterr()
        assert text.offline_corpus(tmp_path) == corpus, name
        assert "building the corpus afresh" in capsys.readouterr().err, name
        assert cached.read_text() == corpus and checksum.is_file(), name
    assert len(builds) == 1 + len(damages)


def test_fuzzed_text8_files_parse_correctly_or_fail_with_one_line(tmp_path):
    from vmd_pyro import faults

    rng = random.Random(15)
    data = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(300))
    with zipfile.ZipFile(tmp_path / "good.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("text8", data)
    good_zip = (tmp_path / "good.zip").read_bytes()
    outcomes = {"parsed": 0, "refused": 0}
    cases = [(".zip", m) for _, m in faults.mutations(good_zip, rng, 700)]
    cases += [("", m) for _, m in faults.mutations(data, rng, 300)]
    cases += [(".zip" if i % 2 else "", b) for i, b in enumerate(faults.random_blobs(rng, 300))]
    for i, (suffix, blob) in enumerate(cases):  # a new file each time: rewriting one is slow
        path = tmp_path / f"case{i}{suffix}"
        path.write_bytes(blob)
        # a plain file's size is checked first: give the alphabet check a chance too
        expected = len(data) if suffix else len(blob)
        outcome, value = faults.classify(text.read_text8, path, expected)
        outcomes[outcome] += 1
        if outcome == "parsed":
            assert len(value) == expected and text.encode(value).max() < text.VOCAB
    assert outcomes["parsed"] > 0 and outcomes["refused"] > 500, outcomes


def test_an_empty_text8_file_is_refused_even_at_its_expected_size(tmp_path):
    (tmp_path / "text8").write_bytes(b"")
    with pytest.raises(ValueError, match="holds no text"):
        text.read_text8(tmp_path / "text8", 0)
