"""SICK (Marelli et al. 2014, SemEval 2014 Task 1): sentence pairs scored for relatedness, a tokeniser, a vocabulary.

The release is three tab-separated UTF-8 files with one header line,
``pair_ID  sentence_A  sentence_B  relatedness_score  entailment_judgment``:
``SICK_train.txt`` (4,500 pairs), ``SICK_trial.txt`` (500, the development
set) and ``SICK_test_annotated.txt`` (4,927). Scores are means of human
judgements in [1, 5]. The protocol: train on train, choose every setting on
trial, report Pearson's r (then Spearman's rho and the MSE) on test once.
Licence CC BY-NC-SA 3.0 (the release's ``readme.txt``); the data is read from
where it lies and never copied into the package.

Sentences become word ids through ``tokenize`` and a ``Vocabulary`` built
from the training sentences only (id 0 pads, id 1 stands for every word the
training set does not hold); ``Vocabulary.encode_batch`` pads a batch to its
longest sentence and gives the lengths.
"""
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = {"train": "SICK_train.txt", "trial": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}
HEADER = ("pair_ID", "sentence_A", "sentence_B", "relatedness_score", "entailment_judgment")
ENTAILMENT_LABELS = ("NEUTRAL", "ENTAILMENT", "CONTRADICTION")
SCORE_RANGE = (1.0, 5.0)
TOKEN = re.compile(r"\w+|[^\w\s]")


class MissingFileError(FileNotFoundError, ValueError):
    """A SICK file that is not there: a FileNotFoundError, and a ValueError like every other bad input here."""


@dataclass
class SickPairs:
    """The pairs of one SICK file: row i is pair ``pair_ids[i]``, (``sentences_a[i]``, ``sentences_b[i]``),
    relatedness ``scores[i]`` in [1, 5]. ``entailment`` is kept as read; the relatedness task does not use it."""

    pair_ids: np.ndarray  # (N,) int64
    sentences_a: list
    sentences_b: list
    scores: np.ndarray  # (N,) float64
    entailment: list
    source: str = ""  # the file read

    item_name = "sentence pairs"  # what its items are, in messages

    def __len__(self):
        return len(self.pair_ids)

    def sentences(self):
        """Every sentence, A then B of each pair in turn."""
        return [s for pair in zip(self.sentences_a, self.sentences_b) for s in pair]


def read_sick_file(path):
    """The pairs of one SICK file. Every problem is a ValueError naming the file (and the line, for a line):
    a missing file (``MissingFileError``, also a FileNotFoundError), text that is not UTF-8, a wrong header,
    a line without exactly five tab-separated columns, a pair id that is not an integer or repeats, an empty
    sentence, a score that is not a number or lies outside [1, 5], an unknown entailment label, no pairs."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such SICK file" + (" (it is a folder)" if path.is_dir() else ""))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, if any, is not part of the header
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") \
            from None
    lines = text.splitlines()  # \n or \r\n
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        got = repr(lines[0][:80]) if lines else "an empty file"
        raise ValueError(f"{path}, line 1: expected the header {' '.join(HEADER)!r} (tab-separated), got {got}")
    ids, a, b, scores, labels, seen = [], [], [], [], [], {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # blank lines (a trailing one) carry nothing
        fields = line.split("\t")
        if len(fields) != len(HEADER):
            raise ValueError(f"{path}, line {number}: expected {len(HEADER)} tab-separated columns "
                             f"({', '.join(HEADER)}), got {len(fields)}: {line[:80]!r}")
        pair_id, sentence_a, sentence_b, score, label = (f.strip() for f in fields)
        if not re.fullmatch(r"\d+", pair_id):
            raise ValueError(f"{path}, line {number}: pair_ID must be a non-negative integer, got {pair_id!r}")
        if int(pair_id) in seen:
            raise ValueError(f"{path}, line {number}: pair_ID {pair_id} already appeared on line {seen[int(pair_id)]}")
        seen[int(pair_id)] = number
        for name, sentence in (("sentence_A", sentence_a), ("sentence_B", sentence_b)):
            if not tokenize(sentence):
                raise ValueError(f"{path}, line {number}: {name} of pair {pair_id} is empty ({sentence!r})")
        try:
            value = float(score)
        except ValueError:
            raise ValueError(f"{path}, line {number}: relatedness_score must be a number, got {score!r}") from None
        if not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:  # NaN fails this too
            raise ValueError(f"{path}, line {number}: relatedness_score must lie in [{SCORE_RANGE[0]:g}, "
                             f"{SCORE_RANGE[1]:g}], got {score!r}")
        if label not in ENTAILMENT_LABELS:
            raise ValueError(f"{path}, line {number}: entailment_judgment must be one of {ENTAILMENT_LABELS}, "
                             f"got {label!r}")
        ids.append(int(pair_id))
        a.append(sentence_a)
        b.append(sentence_b)
        scores.append(value)
        labels.append(label)
    if not ids:
        raise ValueError(f"{path}: holds a header but no pairs")
    return SickPairs(np.array(ids, dtype=np.int64), a, b, np.array(scores), labels, str(path))


def load_sick(path, split=None):
    """SICK from ``path``: a file gives its ``SickPairs``; a folder holding the release gives the pairs of
    ``split`` ("train", "trial" or "test"), or, without ``split``, a dict of all three."""
    path = Path(path)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if not path.exists():
        raise MissingFileError(f"{path}: no such SICK file or folder")
    if path.is_file():
        if split is not None:
            raise ValueError(f"{path} is one file; split={split!r} chooses a file of a folder, give the folder")
        return read_sick_file(path)
    if split is not None:
        return read_sick_file(path / SPLITS[split])
    return {name: read_sick_file(path / file) for name, file in SPLITS.items()}


def tokenize(sentence):
    """Lower-cased words and punctuation marks, each a token: "A man isn't eating." ->
    ['a', 'man', 'isn', "'", 't', 'eating', '.'] (the regex ``\\w+|[^\\w\\s]``)."""
    if not isinstance(sentence, str):
        raise TypeError(f"tokenize: expected a str, got {type(sentence).__name__}")
    return TOKEN.findall(sentence.lower())


class Vocabulary:
    """Word <-> id. Id 0 (``PAD``, "<pad>") pads a batch, id 1 (``UNK``, "<unk>") stands for every word
    outside the vocabulary; the words follow from id 2, most frequent first (ties alphabetical).

    Build it from the training sentences only (``Vocabulary.build``), so that nothing about trial or test
    words leaks into the model. ``to_dict`` / ``from_dict`` give and take plain JSON-able data.
    """

    PAD, UNK = 0, 1
    SPECIALS = ("<pad>", "<unk>")

    def __init__(self, words):
        words = list(words)
        if any(not isinstance(w, str) or not w for w in words):
            raise ValueError("Vocabulary: words must be non-empty strings")
        self.words = list(self.SPECIALS) + [w for w in words if w not in self.SPECIALS]
        if len(set(self.words)) != len(self.words):
            twice = sorted(w for w, c in Counter(self.words).items() if c > 1)[:3]
            raise ValueError(f"Vocabulary: words must be distinct, got {twice} more than once")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences, min_count=1, max_size=None):
        """The words of ``sentences`` seen at least ``min_count`` times (at most ``max_size`` of them,
        the most frequent)."""
        if min_count < 1 or (max_size is not None and max_size < 0):
            raise ValueError(f"Vocabulary.build: min_count must be >= 1 and max_size >= 0 or None, got {min_count}, "
                             f"{max_size}")
        counts = Counter(token for sentence in sentences for token in tokenize(sentence))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words[:max_size] if max_size is not None else words)

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self.words == other.words

    def __repr__(self):
        return f"Vocabulary({len(self)} ids: 2 special, {len(self) - 2} words)"

    def encode(self, sentence):
        """The ids of ``sentence``'s tokens (unknown words -> 1); a sentence without tokens is refused."""
        tokens = tokenize(sentence)
        if not tokens:
            raise ValueError(f"Vocabulary.encode: the sentence {sentence!r} has no words")
        return [self.index.get(t, self.UNK) for t in tokens]

    def decode(self, ids):
        """The tokens of ``ids`` (padding dropped)."""
        return [self.words[int(i)] for i in ids if int(i) != self.PAD]

    def encode_batch(self, sentences, max_length=None, truncate=False):
        """(ids (N, L) int64, lengths (N,) int64): each sentence's ids, padded with 0 to the longest of the batch.

        A sentence longer than ``max_length`` tokens is refused with a ValueError naming it, unless
        ``truncate=True``, which keeps its first ``max_length`` tokens.
        """
        if max_length is not None and max_length < 1:
            raise ValueError(f"encode_batch: max_length must be >= 1 or None, got {max_length}")
        encoded = []
        for sentence in sentences:
            ids = self.encode(sentence)
            if max_length is not None and len(ids) > max_length:
                if not truncate:
                    raise ValueError(f"encode_batch: the sentence {sentence!r} has {len(ids)} tokens, more than "
                                     f"max_length={max_length} (pass truncate=True to keep its first {max_length})")
                ids = ids[:max_length]
            encoded.append(ids)
        if not encoded:
            raise ValueError("encode_batch: no sentences")
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        batch = np.full((len(encoded), int(lengths.max())), self.PAD, dtype=np.int64)
        for i, ids in enumerate(encoded):
            batch[i, :len(ids)] = ids
        return batch, lengths

    def to_dict(self):
        """Plain JSON-able data: {"words": [...], "pad": 0, "unk": 1} (``json.dumps`` takes it as it is)."""
        return {"words": self.words[2:], "pad": self.PAD, "unk": self.UNK}

    @classmethod
    def from_dict(cls, data):
        """The vocabulary ``to_dict`` described."""
        if not isinstance(data, dict) or not isinstance(data.get("words"), list):
            raise ValueError("Vocabulary.from_dict: expected a dict with a list 'words' (as to_dict writes)")
        if (data.get("pad", cls.PAD), data.get("unk", cls.UNK)) != (cls.PAD, cls.UNK):
            raise ValueError(f"Vocabulary.from_dict: pad and unk must be {cls.PAD} and {cls.UNK}, got "
                             f"{data.get('pad')} and {data.get('unk')}")
        return cls(data["words"])
