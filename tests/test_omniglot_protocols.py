"""Omniglot's full-scale protocols (tinysiam.data.omniglot_protocols) and the few-shot table (evaluation.fewshot).

The tests on the real archives skip, saying why, where the data folder lacks them.
"""
import hashlib
import io
import re
import zipfile
from collections import defaultdict

import numpy as np
import pytest
from conftest import needs_pillow

from tinysiam.data import LabelledImages
from tinysiam.data import omniglot_protocols as P
from tinysiam.evaluation.fewshot import STANDARD_SETTINGS, episode_accuracy, few_shot_table
from tinysiam.evaluation.metrics import n_way_k_shot_accuracy

DRAWING = re.compile(r"(?:^|/)([^/]+)/(character\d+)/[^/]+\.png$")
# sha256 of the sorted class names ("Alphabet/characterNN/rotNNN", one per line, joined by "\n") of each file
# data/omniglot/splits/vinyals/PART.txt of github.com/jakesnell/prototypical-networks (commit c9bb4d25...),
# with their line counts: a fingerprint of the published split, not a copy of it
PUBLISHED_VINYALS = {
    "train": (4112, "2c896cd81ce6e265cb77cf6b6639f5413bb98cf6396cfb69e79bf3ae783f2e26"),
    "val": (688, "aa90019d0f1878f34cd74856b44f307944e08b7408d636baebccd94ba852d517"),
    "test": (1692, "871120bc00230686b507e366092d9f804988354e61d5405c4008e002223f2bcc"),
    "trainval": (4800, "62d34cdcc485031005c531bd2a8f0dd8fcd177974311773eab1b29614501583c"),
}


# ----- the lists, without data -----------------------------------------------------------------------
def test_the_alphabet_lists_partition_the_archives():
    assert len(set(P.BACKGROUND_ALPHABETS)) == 30 and len(set(P.EVALUATION_ALPHABETS)) == 20
    assert not set(P.BACKGROUND_ALPHABETS) & set(P.EVALUATION_ALPHABETS)
    assert len(P.LAKE_RUN_ALPHABETS) == 20 and len(P.LAKE_TEST_ALPHABETS) == 10
    assert all(list(P.LAKE_RUN_ALPHABETS.values()).count(a) == 2 for a in P.LAKE_TEST_ALPHABETS)
    assert sorted(P.LAKE_TEST_ALPHABETS + P.KOCH_VALIDATION_ALPHABETS) == sorted(P.EVALUATION_ALPHABETS)
    assert P.KOCH_VALIDATION_ALPHABETS == ("Angelic", "Atemayar_Qelisayer", "Aurek-Besh", "Avesta", "Keble",
                                           "Mongolian", "Oriya", "Sylheti", "Syriac_(Serto)", "ULOG")
    assert {P.archive_of(a) for a in P.KOCH_VALIDATION_ALPHABETS + P.LAKE_TEST_ALPHABETS} == {"evaluation"}
    with pytest.raises(ValueError, match="not an Omniglot alphabet"):
        P.archive_of("Klingon")


def test_vinyals_alphabets_cover_every_alphabet_once_except_the_split_one():
    parts = P.VINYALS_TRAIN_ALPHABETS + P.VINYALS_VAL_ALPHABETS + P.VINYALS_TEST_ALPHABETS
    assert len(parts) == len(set(parts)) == 49
    assert sorted(parts + (P.VINYALS_SPLIT_ALPHABET,)) == sorted(P.BACKGROUND_ALPHABETS + P.EVALUATION_ALPHABETS)
    assert P.in_vinyals_part("Gurmukhi/character41", "train") and P.in_vinyals_part("Gurmukhi/character42", "test")
    assert not P.in_vinyals_part("Gurmukhi/character41", "test")
    assert P.in_vinyals_part("Hebrew/character01", "val") and P.in_vinyals_part("Hebrew/character01", "trainval")
    with pytest.raises(ValueError, match="part must be one of"):
        P.vinyals_alphabets("validation")


def tiny(classes=3, per_class=2, names=True, groups=("A", "A", "B")):
    rng = np.random.default_rng(0)
    images = rng.random((classes * per_class, 1, 4, 4)).astype(np.float32)
    labels = np.repeat(np.arange(classes), per_class)
    return LabelledImages(images, labels, [f"{groups[c]}/character{c + 1:02d}" for c in range(classes)],
                          list(groups[:classes]),
                          [f"item{i}" for i in range(len(labels))] if names else None)


def test_with_rotations_makes_one_class_per_character_and_angle():
    part = tiny()
    rotated = P.with_rotations(part.select_classes([0, 2]))
    assert len(rotated.classes) == 8 and len(rotated) == 16
    assert rotated.class_names[:4] == [f"A/character01/rot{a:03d}" for a in (0, 90, 180, 270)]
    assert rotated.groups == ["A"] * 4 + ["B"] * 4
    for k in range(4):  # class 4 * c + k holds character c turned k quarter turns counter-clockwise
        got = rotated.images[rotated.labels == k]
        np.testing.assert_array_equal(got, np.rot90(part.images[part.labels == 0], k, axes=(2, 3)))
    assert rotated.names[rotated.labels.tolist().index(1)] == "item0/rot090"
    np.testing.assert_array_equal(np.rot90(np.array([[1, 2], [3, 4]])), [[2, 4], [1, 3]])  # counter-clockwise
    assert len(P.with_rotations(part, (0,)).classes) == 3
    with pytest.raises(ValueError, match="multiples of 90"):
        P.with_rotations(part, (0, 45))


def test_merge_keeps_both_parts_classes_apart():
    a, b = tiny(2, groups=("A", "A")), tiny(1, groups=("C",))
    b = LabelledImages(b.images, b.labels, ["C/character01"], ["C"], b.names)
    merged = P.merge(a, b)
    assert merged.class_names == ["A/character01", "A/character02", "C/character01"]
    assert merged.labels.tolist() == [0, 0, 1, 1, 2, 2] and merged.groups == ["A", "A", "C"]
    with pytest.raises(ValueError, match="share classes"):
        P.merge(a, a)


# ----- the few-shot table ----------------------------------------------------------------------------
class EmbeddingModel:
    """What few_shot_table needs of a SiameseModel without a head: embed and embedding_similarity (-L2)."""

    metric, head = "l2", None

    def embed(self, images):
        return images.reshape(len(images), -1)

    def embedding_similarity(self, queries, supports):
        return -np.sqrt(((queries[:, None] - supports[None]) ** 2).sum(-1))


def clusters(n_classes=12, per_class=10, noise=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_classes, 6))
    labels = np.repeat(np.arange(n_classes), per_class)
    points = (centres[labels] + noise * rng.normal(0, 1, (len(labels), 6))).astype(np.float32)
    return LabelledImages(points[:, None, None, :], labels, [f"c{i}" for i in range(n_classes)])


def test_an_embedding_model_scores_as_the_nearest_prototype():
    data = clusters()
    for way, shot in STANDARD_SETTINGS[:2] + ((10, 1),):
        ours = episode_accuracy(EmbeddingModel(), data.images.reshape(len(data), -1), data.labels, way, shot,
                                n_query=1, n_episodes=50, seed=3)
        reference = n_way_k_shot_accuracy(data.images.reshape(len(data), -1), data.labels, way, shot, n_query=1,
                                          n_episodes=50, seed=3)
        assert ours.accuracy == pytest.approx(reference.accuracy) and ours.ci95 == pytest.approx(reference.ci95)


def test_few_shot_table_is_seeded_and_easier_with_more_shots_and_fewer_ways():
    data = clusters(n_classes=25)
    table = few_shot_table(EmbeddingModel(), data, n_query=3, n_episodes=200, seed=0)
    again = few_shot_table(EmbeddingModel(), data, n_query=3, n_episodes=200, seed=0)
    assert table.as_dict() == again.as_dict()
    acc = {key: r.accuracy for key, r in table.results.items()}
    assert acc[(5, 5)] > acc[(5, 1)] > acc[(20, 1)] and acc[(20, 5)] > acc[(20, 1)]
    assert table.as_dict()["20way_1shot"]["episodes"] == 200 and "20-way 1-shot" in str(table)


class HeadModel(EmbeddingModel):
    """A model with a head: embedding_similarity is its own score, and the prototypes are mean feature maps."""

    head = object()

    def __init__(self):
        self.calls = []

    def embed(self, images):
        return images  # "feature maps"

    def embedding_similarity(self, queries, supports):
        self.calls.append(supports.shape)
        q, s = queries.reshape(len(queries), -1), supports.reshape(len(supports), -1)
        return -np.sqrt(((q[:, None] - s[None]) ** 2).sum(-1))


def test_a_head_model_scores_queries_against_mean_support_maps():
    data = clusters()
    model = HeadModel()
    result = episode_accuracy(model, model.embed(data.images), data.labels, 5, 3, n_query=2, n_episodes=20)
    assert model.calls == [(5, 1, 1, 6)] * 20 and result.accuracy > 0.5


# ----- the real archives -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def omniglot(data_root):
    folder = data_root / "omniglot"
    wanted = ["images_background.zip", "images_evaluation.zip", "all_runs.zip"]
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"the full Omniglot archives are not in {folder} (missing {', '.join(missing)})")
    return folder


def characters(path):
    """{(alphabet, "characterNN")} of an Omniglot archive, from its member names."""
    with zipfile.ZipFile(path) as archive:
        return {m.groups() for m in map(DRAWING.search, archive.namelist()) if m}


def test_the_lists_name_the_archives_alphabets(omniglot):
    background, evaluation = characters(omniglot / "images_background.zip"), \
        characters(omniglot / "images_evaluation.zip")
    assert sorted({a for a, _ in background}) == sorted(P.BACKGROUND_ALPHABETS) and len(background) == 964
    assert sorted({a for a, _ in evaluation}) == sorted(P.EVALUATION_ALPHABETS) and len(evaluation) == 659


def test_vinyals_split_has_the_published_counts_and_classes(omniglot):
    everything = characters(omniglot / "images_background.zip") | characters(omniglot / "images_evaluation.zip")
    names = sorted(f"{a}/{c}" for a, c in everything)
    counts = {part: sum(P.in_vinyals_part(n, part) for n in names) for part in P.VINYALS_PARTS}
    assert counts == {**P.VINYALS_CHARACTERS, "trainval": 1200}
    assert counts["train"] + counts["val"] + counts["test"] == P.CHARACTERS == len(names)
    for part, (lines, digest) in PUBLISHED_VINYALS.items():
        classes = sorted(f"{n}/rot{r:03d}" for n in names if P.in_vinyals_part(n, part) for r in P.VINYALS_ROTATIONS)
        assert len(classes) == lines == 4 * counts[part]
        assert hashlib.sha256("\n".join(classes).encode()).hexdigest() == digest, part


def decoded(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"))


def fingerprint(pixels):
    return hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).digest()


@needs_pillow
def test_every_lake_run_image_is_a_drawing_of_its_stated_alphabet(omniglot):
    """Pixel for pixel: each of the 800 images of all_runs.zip equals a drawing of the alphabet its run is listed
    under in images_evaluation.zip, and none equals a drawing of a Koch validation alphabet."""
    by_print = defaultdict(list)  # fingerprint of the decoded pixels -> [(alphabet, member)]
    with zipfile.ZipFile(omniglot / "images_evaluation.zip") as evaluation:
        for name in evaluation.namelist():
            match = DRAWING.search(name)
            if match:
                by_print[fingerprint(decoded(evaluation.read(name)))].append((match.group(1), name))
        seen = defaultdict(int)
        with zipfile.ZipFile(omniglot / "all_runs.zip") as runs:
            for name in sorted(runs.namelist()):
                match = re.search(r"(run\d+)/(training|test)/\w+\.png$", name)
                if not match:
                    continue
                run = match.group(1)
                pixels = decoded(runs.read(name))
                found = by_print.get(fingerprint(pixels), [])
                alphabets = {alphabet for alphabet, _ in found}
                assert not alphabets & set(P.KOCH_VALIDATION_ALPHABETS), f"{name} is a drawing of {alphabets}"
                stated = [member for alphabet, member in found if alphabet == P.LAKE_RUN_ALPHABETS[run]]
                assert stated, f"{name} is no drawing of {P.LAKE_RUN_ALPHABETS[run]} (found in {alphabets or 'none'})"
                assert any(np.array_equal(pixels, decoded(evaluation.read(m))) for m in stated), name
                seen[run] += 1
    assert seen == {run: 40 for run in P.LAKE_RUN_ALPHABETS}  # 20 supports and 20 queries each, 800 in all
