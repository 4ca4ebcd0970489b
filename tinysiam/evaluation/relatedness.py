"""Sentence relatedness (SICK's protocol): Pearson's r, Spearman's rho, MSE, and the lexical baselines.

The protocol scores predictions against the gold relatedness of the test
pairs by Pearson's r first, then Spearman's rho and the mean squared error.
The baselines score a pair without learning anything from the scores: the
cosine of the two sentences' TF-IDF vectors, the cosine of their word-count
vectors, and the Jaccard overlap of their word sets. The vectorisers are
fitted on the training sentences only and use ``tokenize``, the tokeniser
the models read with. Pearson and Spearman do not depend on the baselines'
scale; the MSE needs scores on the 1-5 scale, which ``linear_fit`` gives by a
least-squares line fitted on the training pairs.
"""
import numpy as np

from ..data.sick import tokenize

BASELINES = ("tfidf", "bow", "jaccard")


def _pair_of_vectors(fn, prediction, gold):
    p = np.asarray(prediction, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    if p.ndim != 1 or p.shape != g.shape or len(p) < 2:
        raise ValueError(f"{fn}: prediction and gold must be two (N,) arrays with N >= 2, got shapes {p.shape} "
                         f"and {g.shape}")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ValueError(f"{fn}: prediction and gold must be finite")
    return p, g


def pearson_r(prediction, gold):
    """Pearson's correlation: cov(p, g) / (sd(p) sd(g)). A constant input has no correlation: ValueError."""
    p, g = _pair_of_vectors("pearson_r", prediction, gold)
    p, g = p - p.mean(), g - g.mean()
    norm = np.sqrt((p * p).sum() * (g * g).sum())
    if norm == 0:
        raise ValueError("pearson_r: prediction or gold is constant; the correlation is undefined")
    return float((p * g).sum() / norm)


def average_ranks(values):
    """Ranks 1..N of ``values``, tied values sharing the mean of their ranks (as scipy.stats.rankdata)."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])  # the first position of each value
    ends = np.r_[starts[1:], len(v)]
    mean_rank = (starts + ends + 1) / 2  # positions starts..ends-1 hold ranks starts+1..ends
    ranks = np.empty(len(v))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman_rho(prediction, gold):
    """Spearman's correlation: Pearson's r of the average ranks (ties share their mean rank)."""
    p, g = _pair_of_vectors("spearman_rho", prediction, gold)
    return pearson_r(average_ranks(p), average_ranks(g))


def mse(prediction, gold):
    """Mean squared error."""
    p, g = _pair_of_vectors("mse", prediction, gold)
    return float(((p - g) ** 2).mean())


def relatedness_metrics(prediction, gold):
    """{"pearson": r, "spearman": rho, "mse": mean squared error}, the protocol's three numbers."""
    return {"pearson": pearson_r(prediction, gold), "spearman": spearman_rho(prediction, gold),
            "mse": mse(prediction, gold)}


def linear_fit(x, y):
    """(slope, intercept) of the least-squares line y ~ slope * x + intercept."""
    x, y = _pair_of_vectors("linear_fit", x, y)
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


# ----- lexical baselines ---------------------------------------------------------------------------------
def _row_cosines(a, b):
    """Cosine of row i of sparse matrix a with row i of b (0 where either row is all zero)."""
    dots = np.asarray(a.multiply(b).sum(axis=1), dtype=np.float64).ravel()
    norms = np.sqrt(np.asarray(a.multiply(a).sum(axis=1)).ravel() * np.asarray(b.multiply(b).sum(axis=1)).ravel())
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def _vectorizer(kind, tokenizer):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer  # the data extra

    # tokenizer=None: scikit-learn's own analyzer (lower case, words of 2 or more characters)
    options = {} if tokenizer is None else dict(tokenizer=tokenizer, lowercase=False, token_pattern=None)
    return TfidfVectorizer(**options) if kind == "tfidf" else CountVectorizer(**options)


def baseline_scores(kind, train_sentences, sentences_a, sentences_b, tokenizer=tokenize):
    """The ``kind`` baseline's score for each pair (sentences_a[i], sentences_b[i]):

    - "tfidf": cosine of TF-IDF vectors (scikit-learn's defaults: smoothed idf, l2 norm), fitted on
      ``train_sentences``; words outside them are dropped;
    - "bow": cosine of word-count vectors over the vocabulary of ``train_sentences``;
    - "jaccard": |A & B| / |A | B| of the two sentences' sets of tokens (nothing to fit).

    ``tokenizer`` splits a sentence into tokens: the project's ``tokenize`` (words and punctuation marks,
    single letters included), or None for scikit-learn's default analyzer (words of two or more letters
    or digits: "a" and punctuation are dropped).
    """
    if kind not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")
    if len(sentences_a) != len(sentences_b) or not len(sentences_a):
        raise ValueError(f"baseline_scores: needs as many sentences A as B, at least one; got {len(sentences_a)} "
                         f"and {len(sentences_b)}")
    if kind == "jaccard":
        split = tokenizer or _vectorizer("bow", None).build_analyzer()
        sets = [(set(split(a)), set(split(b))) for a, b in zip(sentences_a, sentences_b)]
        return np.array([len(x & y) / len(x | y) if x | y else 0.0 for x, y in sets])
    vectorizer = _vectorizer(kind, tokenizer).fit(list(train_sentences))
    return _row_cosines(vectorizer.transform(list(sentences_a)), vectorizer.transform(list(sentences_b)))


def evaluate_baselines(train, test, kinds=BASELINES, tokenizer=tokenize):
    """{kind: metrics on ``test``} for each baseline, vectorisers fitted on ``train``'s sentences; the MSE is
    that of the baseline's score mapped onto the 1-5 scale by a line fitted on ``train``'s pairs.
    ``train`` and ``test`` are ``SickPairs``; ``tokenizer`` as for ``baseline_scores``."""
    results = {}
    for kind in kinds:
        train_scores = baseline_scores(kind, train.sentences(), train.sentences_a, train.sentences_b, tokenizer)
        slope, intercept = linear_fit(train_scores, train.scores)
        scores = baseline_scores(kind, train.sentences(), test.sentences_a, test.sentences_b, tokenizer)
        results[kind] = relatedness_metrics(slope * scores + intercept, test.scores)
    return results
