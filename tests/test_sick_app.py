"""SICK from the command line: tinysiam train --recipe sick, then verify, index and search with sentences."""
import json

import numpy as np
import pytest

from tinysiam.app.cli import main
from tinysiam.app.model import load_model

SHORT = ["--epochs", "2", "--steps-per-epoch", "6", "--quiet", "--no-plots"]


@pytest.fixture(scope="module")
def sick_root(data_root):
    if not (data_root / "sick2014" / "SICK_train.txt").is_file():
        pytest.skip(f"SICK is not in the data folder ({data_root / 'sick2014'})")
    return data_root


@pytest.fixture(scope="module")
def sick_run(sick_root, tmp_path_factory):
    """A short run of the sick recipe (2 x 6 steps), tested on the test pairs."""
    out = tmp_path_factory.mktemp("sick") / "run"
    assert main(["train", "--recipe", "sick", "--data-dir", str(sick_root), "--out", str(out), *SHORT]) == 0
    return out


def test_a_short_run_is_validated_on_trial_and_tested_next_to_the_baselines(sick_root, sick_run):
    from tinysiam.data.registry import load_split
    from tinysiam.evaluation.relatedness import relatedness_metrics

    results = json.loads((sick_run / "results.json").read_text())
    assert [sorted(row) for row in results["history"]] == [["epoch", "seconds", "train_loss", "val_pearson"]] * 2
    assert results["history"][1]["train_loss"] < results["history"][0]["train_loss"]
    _, trial, test = load_split("sick", None, 0, sick_root)
    model, _ = load_model(sick_run / "best.npz")
    assert results["test_model"] == pytest.approx(relatedness_metrics(model.pair_scores(test.sentences_a,
                                                                                        test.sentences_b), test.scores))
    best = max(row["val_pearson"] for row in results["history"])
    assert results["best_val_accuracy"] == pytest.approx(best)
    assert results["test_tfidf"]["pearson"] == pytest.approx(0.620, abs=0.001)  # scikit-learn's words, fitted on train
    assert results["test_pairs"] == 4927 and results["val_verification_eer"] is None  # nothing to calibrate


def test_resuming_a_sentence_run_ends_on_the_same_weights(sick_root, sick_run, tmp_path):
    from tinysiam.serialization import read_npz

    out = tmp_path / "stopped"
    args = ["train", "--recipe", "sick", "--data-dir", str(sick_root), "--out", str(out), "--quiet", "--no-plots",
            "--steps-per-epoch", "6"]
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    straight, resumed = read_npz(sick_run / "last.npz"), read_npz(out / "last.npz")
    for name in straight:
        if name != "meta":
            np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


def test_verify_index_and_search_take_sentences(sick_run, tmp_path, capsys):
    model, _ = load_model(sick_run / "best.npz")
    a, b = "A man is playing a guitar.", "Somebody is playing an instrument."
    assert main(["verify", a, b, "--checkpoint", str(sick_run / "best.npz")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == "relatedness" and float(printed[1]) == pytest.approx(model.pair_scores([a], [b])[0], abs=5e-4)

    sentences = ["A man is playing a guitar.", "A woman is slicing an onion.", "A dog runs through the grass.",
                 "The man plays the guitar loudly.", "A child is riding a horse."]
    (tmp_path / "sentences.txt").write_text("\n".join(sentences[:3]) + "\n\n" + "\n".join(sentences[3:]) + "\n")
    index = tmp_path / "sentences.npz"
    assert main(["index", str(tmp_path / "sentences.txt"), "--checkpoint", str(sick_run / "best.npz"),
                 "--out", str(index)]) == 0
    assert "indexed 5 sentences (5 in all)" in capsys.readouterr().out
    query = "A man plays the guitar."
    assert main(["search", str(index), query, "-k", "5"]) == 0
    rows = [line.split(None, 2) for line in capsys.readouterr().out.splitlines()[2:]]
    scores = model.embedding_similarity(model.embed([query]), model.embed(sentences))[0]
    assert [row[2] for row in rows] == [sentences[i] for i in np.argsort(-scores, kind="stable")]
    np.testing.assert_allclose([float(row[1]) for row in rows], np.sort(scores)[::-1], atol=5e-4)
    assert not (tmp_path / "search.png").exists()  # no contact sheet of sentences


@pytest.mark.parametrize("case, text", [
    ("latin1", "IMAGES: {file} is not UTF-8 text"),
    ("empty", "IMAGES: {file} holds no sentences"),
    ("far", "--far 0.01: a relatedness model predicts a score"),
])
def test_bad_sentence_input_is_one_line(sick_run, tmp_path, capsys, case, text):
    path = tmp_path / "sentences.txt"
    path.write_bytes("Un homme joue de la guitare, ça alors.\n".encode("latin-1") if case == "latin1" else b"\n \n")
    checkpoint = str(sick_run / "best.npz")
    args = (["verify", "a man", "a woman", "--checkpoint", checkpoint, "--far", "0.01"] if case == "far" else
            ["index", str(path), "--checkpoint", checkpoint, "--out", str(tmp_path / "i.npz")])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert text.format(file=path) in err and err.count("\n") == 1
    assert not (tmp_path / "i.npz").exists()
