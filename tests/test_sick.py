"""SICK: the reader on the real release and on broken files, the tokeniser, the vocabulary, batch encoding."""
import json

import numpy as np
import pytest
from conftest import SICK, needs_sick

from tinysiam.data.sick import (
    HEADER,
    SPLITS,
    MissingFileError,
    SickPairs,
    Vocabulary,
    load_sick,
    read_sick_file,
    tokenize,
)

GOOD_LINES = ["1\tA man is playing a guitar\tA person plays a guitar\t4.5\tENTAILMENT",
              "2\tA dog runs.\tNobody is cooking\t1.2\tNEUTRAL"]


def write(tmp_path, lines, name="SICK_train.txt", header=True, ending="\n"):
    path = tmp_path / name
    path.write_text(ending.join((["\t".join(HEADER)] if header else []) + lines) + ending, encoding="utf-8")
    return path


# ----- reading ---------------------------------------------------------------------------------------------
def test_reads_a_small_file(tmp_path):
    pairs = read_sick_file(write(tmp_path, GOOD_LINES))
    assert isinstance(pairs, SickPairs) and len(pairs) == 2
    assert pairs.pair_ids.tolist() == [1, 2] and pairs.scores.tolist() == [4.5, 1.2]
    assert pairs.sentences_a == ["A man is playing a guitar", "A dog runs."]
    assert pairs.entailment == ["ENTAILMENT", "NEUTRAL"]
    assert pairs.sentences() == ["A man is playing a guitar", "A person plays a guitar", "A dog runs.",
                                 "Nobody is cooking"]
    assert pairs.source.endswith("SICK_train.txt")


def test_crlf_a_byte_order_mark_and_a_trailing_blank_line_read_the_same(tmp_path):
    plain = read_sick_file(write(tmp_path, GOOD_LINES))
    crlf = read_sick_file(write(tmp_path, GOOD_LINES + [""], name="crlf.txt", ending="\r\n"))
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "SICK_train.txt").read_bytes())
    for other in (crlf, read_sick_file(bom)):
        assert other.sentences() == plain.sentences() and other.scores.tolist() == plain.scores.tolist()


def test_load_sick_takes_a_folder_or_a_file(tmp_path):
    for name in SPLITS.values():
        write(tmp_path, GOOD_LINES, name=name)
    everything = load_sick(tmp_path)
    assert set(everything) == {"train", "trial", "test"} and all(len(p) == 2 for p in everything.values())
    assert load_sick(tmp_path, "trial").source.endswith("SICK_trial.txt")
    assert len(load_sick(tmp_path / "SICK_test_annotated.txt")) == 2
    with pytest.raises(ValueError, match="split must be one of"):
        load_sick(tmp_path, "dev")
    with pytest.raises(ValueError, match="is one file; split='train' chooses a file of a folder"):
        load_sick(tmp_path / "SICK_trial.txt", "train")


@pytest.mark.parametrize("line, message", [
    ("3\tA man\tA woman\t4.0", r"line 4: expected 5 tab-separated columns .*got 4"),
    ("3\tA man\tA woman\t4.0\tNEUTRAL\textra", r"line 4: expected 5 tab-separated columns .*got 6"),
    ("3\tA man\tA woman\tfour\tNEUTRAL", r"line 4: relatedness_score must be a number, got 'four'"),
    ("3\tA man\tA woman\t5.5\tNEUTRAL", r"line 4: relatedness_score must lie in \[1, 5\], got '5.5'"),
    ("3\tA man\tA woman\t0.9\tNEUTRAL", r"line 4: relatedness_score must lie in \[1, 5\], got '0.9'"),
    ("3\tA man\tA woman\tnan\tNEUTRAL", r"line 4: relatedness_score must lie in \[1, 5\], got 'nan'"),
    ("3\t \tA woman\t3\tNEUTRAL", r"line 4: sentence_A of pair 3 is empty \(''\)"),
    ("3\tA man\t\t3\tNEUTRAL", r"line 4: sentence_B of pair 3 is empty"),
    ("x3\tA man\tA woman\t3\tNEUTRAL", r"line 4: pair_ID must be a non-negative integer, got 'x3'"),
    ("2\tA man\tA woman\t3\tNEUTRAL", r"line 4: pair_ID 2 already appeared on line 3"),
    ("3\tA man\tA woman\t3\tMAYBE", r"line 4: entailment_judgment must be one of .*got 'MAYBE'"),
])
def test_malformed_lines_name_the_file_and_the_line(tmp_path, line, message):
    path = write(tmp_path, GOOD_LINES + [line])
    with pytest.raises(ValueError, match=f"SICK_train.txt, {message}"):
        read_sick_file(path)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"SICK_train.txt, line 1: expected the header 'pair_ID sentence_A"):
        read_sick_file(write(tmp_path, GOOD_LINES, header=False))
    with pytest.raises(ValueError, match=r"SICK_train.txt: holds a header but no pairs"):
        read_sick_file(write(tmp_path, []))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.txt, line 1: expected the header .*got an empty file"):
        read_sick_file(empty)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(("\t".join(HEADER) + "\n1\tA caf\xe9\tA bar\t3\tNEUTRAL\n").encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt, line 2: not UTF-8 text \(byte 0xe9 at offset \d+\)"):
        read_sick_file(latin)
    with pytest.raises(ValueError, match=r"missing.txt: no such SICK file"):
        read_sick_file(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match=r"SICK_trial.txt: no such SICK file"):  # also a FileNotFoundError
        load_sick(tmp_path, "trial")
    assert issubclass(MissingFileError, ValueError) and issubclass(MissingFileError, FileNotFoundError)
    with pytest.raises(ValueError, match=r"nowhere: no such SICK file or folder"):
        load_sick(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"no such SICK file \(it is a folder\)"):
        read_sick_file(tmp_path)


# ----- tokens and ids ----------------------------------------------------------------------------------------
def test_tokenize_splits_words_and_punctuation_in_lower_case():
    assert tokenize("A man isn't eating, the DOG is!") == ["a", "man", "isn", "'", "t", "eating", ",", "the", "dog",
                                                          "is", "!"]
    assert tokenize("  ") == [] and tokenize("Two-year-old") == ["two", "-", "year", "-", "old"]
    with pytest.raises(TypeError, match="tokenize: expected a str, got int"):
        tokenize(3)


def test_vocabulary_ids_padding_unknown_and_json():
    vocab = Vocabulary.build(["The cat sat.", "the dog sat", "A cat"])
    assert vocab.words[:2] == ["<pad>", "<unk>"] and vocab.PAD == 0 and vocab.UNK == 1
    assert vocab.words[2:] == ["cat", "sat", "the", ".", "a", "dog"]  # most frequent first, ties alphabetical
    assert vocab.encode("The zebra sat") == [4, 1, 3] and vocab.decode([4, 1, 3, 0, 0]) == ["the", "<unk>", "sat"]
    assert len(vocab) == 8 and "dog" in vocab and "zebra" not in vocab
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab and again.encode("a dog") == vocab.encode("a dog")
    assert Vocabulary.build(["a a b", "b c"], min_count=2).words[2:] == ["a", "b"]
    assert Vocabulary.build(["a a b", "b c"], max_size=1).words[2:] == ["a"]
    with pytest.raises(ValueError, match="from_dict: expected a dict with a list 'words'"):
        Vocabulary.from_dict({"tokens": []})
    with pytest.raises(ValueError, match="words must be distinct, got \\['a'\\]"):
        Vocabulary(["a", "b", "a"])


def test_encode_batch_pads_to_the_longest_and_refuses_or_truncates_long_sentences():
    vocab = Vocabulary.build(["one two three four", "five"])
    ids, lengths = vocab.encode_batch(["one two", "five", "one two three four"])
    assert ids.dtype == np.int64 and ids.shape == (3, 4) and lengths.tolist() == [2, 1, 4]
    assert ids.tolist() == [[vocab.index["one"], vocab.index["two"], 0, 0], [vocab.index["five"], 0, 0, 0],
                            vocab.encode("one two three four")]
    with pytest.raises(ValueError, match=r"the sentence 'one two three four' has 4 tokens, more than max_length=3"):
        vocab.encode_batch(["five", "one two three four"], max_length=3)
    ids, lengths = vocab.encode_batch(["five", "one two three four"], max_length=3, truncate=True)
    assert ids.shape == (2, 3) and lengths.tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"Vocabulary.encode: the sentence '   ' has no words"):
        vocab.encode_batch(["five", "   "])
    with pytest.raises(ValueError, match=r"the sentence '' has no words"):
        vocab.encode("")
    with pytest.raises(ValueError, match="encode_batch: no sentences"):
        vocab.encode_batch([])


# ----- the real release ---------------------------------------------------------------------------------------
@needs_sick
def test_the_release_has_the_published_sizes_and_ranges():
    data = load_sick(SICK)
    assert {name: len(pairs) for name, pairs in data.items()} == {"train": 4500, "trial": 500, "test": 4927}
    for pairs in data.values():
        assert pairs.scores.min() == 1.0 and pairs.scores.max() == 5.0
        assert len(set(pairs.pair_ids.tolist())) == len(pairs)
    assert not set(data["train"].pair_ids.tolist()) & set(data["test"].pair_ids.tolist())
    first = data["train"]
    assert first.pair_ids[0] == 1 and first.scores[0] == 4.5
    assert first.sentences_a[0] == "A group of kids is playing in a yard and an old man is standing in the background"


@needs_sick
def test_vocabulary_from_the_training_sentences_covers_trial_and_test_closely():
    data = load_sick(SICK)
    vocab = Vocabulary.build(data["train"].sentences())
    assert len(vocab) == 2177  # 2,175 words and the two special ids
    for split in ("trial", "test"):
        ids, lengths = vocab.encode_batch(data[split].sentences())
        assert lengths.max() <= 36 and (ids == vocab.UNK).sum() / lengths.sum() < 0.005
