"""Image search: exact chunked search, the index file, ``tinysiam index`` / ``search``, and the FAISS path."""
import zipfile

import numpy as np
import pytest
from conftest import on, pattern_images, write_png
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysiam.app import image_index, search
from tinysiam.app.cli import main
from tinysiam.app.model import load_model
from tinysiam.engine.backend import to_numpy
from tinysiam.evaluation import retrieval

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """A folder of 24 PNGs, patternC/N.png (6 patterns x 4), plus a text file and a damaged PNG."""
    folder = tmp_path_factory.mktemp("collection")
    images = pattern_images(4, seed=11)
    for i, (image, label) in enumerate(zip(images.images, images.labels)):
        write_png(folder / f"pattern{label}" / f"{i}.png", image)
    (folder / "README.txt").write_text("not an image, and not named like one")
    (folder / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    return folder


# ----- exact search ------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(n_queries=st.integers(1, 9), n_items=st.integers(1, 40), dim=st.integers(1, 5), block=st.integers(1, 50),
       seed=st.integers(0, 999), data=st.data())
def test_nearest_is_the_brute_force_top_k_in_any_blocks(n_queries, n_items, dim, block, seed, data):
    rng = np.random.default_rng(seed)
    queries, items = rng.standard_normal((n_queries, dim)), rng.standard_normal((n_items, dim))
    k = data.draw(st.integers(1, n_items))
    indices, scores = retrieval.nearest(queries, items, k, block_pairs=block)
    squared = ((queries[:, None] - items[None]) ** 2).sum(axis=2)
    expected = np.argsort(squared, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(indices, expected)  # continuous random values: no ties
    # the scores rank like minus the squared distances: they differ by each query's |q|^2
    np.testing.assert_allclose(scores - (queries ** 2).sum(axis=1, keepdims=True),
                               -np.take_along_axis(squared, expected, axis=1), rtol=1e-9, atol=1e-9)


def test_nearest_on_each_device(device):
    rng = np.random.default_rng(0)
    queries, items = rng.standard_normal((5, 8)).astype(np.float32), rng.standard_normal((300, 8)).astype(np.float32)
    indices, scores = retrieval.nearest(*on(device, queries, items), 7, block_pairs=64)
    reference, _ = retrieval.nearest(queries, items, 7)
    np.testing.assert_array_equal(to_numpy(indices), reference)


def untrained(loss):
    """A randomly initialised model of ``loss``, an in-memory index of 40 images, and 6 query images."""
    from tinysiam.app.config import TrainConfig
    from tinysiam.app.model import SiameseModel

    preset = "relation28" if loss == "relation" else "digits"
    model = SiameseModel(TrainConfig(preset=preset, loss=loss, augment=loss == "nt-xent"),
                         rng=np.random.default_rng(0)).eval()
    images = np.random.default_rng(4).random((46, 1) + model_input_size(preset), dtype=np.float32)
    embeddings = to_numpy(model.embed(images[:40]))
    meta = {"checkpoint": {"score": model.score_kind}, "approximate": None}
    return model, image_index.ImageIndex(embeddings, [f"{i}.png" for i in range(40)], np.zeros(40, np.int32), meta), \
        images[40:]


def model_input_size(preset):
    from tinysiam.app.presets import get_preset

    return get_preset(preset).input_size


@pytest.mark.parametrize("loss", ["contrastive", "chopra", "nt-xent", "koch", "relation"])
def test_search_ranks_as_the_model_scores_pairs(loss):
    """L2, L1 (chopra), cosine (nt-xent), Koch's logit, a relation module: the k best of what verify would score."""
    model, index, images = untrained(loss)
    queries = to_numpy(model.embed(images))
    indices, scores = image_index.search(index, model, queries, 5)
    every = model.embedding_similarity(queries, index.embeddings)  # each query against each indexed image
    np.testing.assert_allclose(scores, -np.sort(-every, axis=1)[:, :5], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.take_along_axis(every, indices, axis=1), scores, rtol=1e-4, atol=1e-4)
    if model.head is None:  # found rows are measured from their difference: an indexed image is 0 from itself
        assert image_index.search(index, model, index.embeddings[7:8], 1)[1][0, 0] == pytest.approx(0, abs=1e-6)


def test_faiss_ranks_cosine_models_by_cosine():
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install tinysiam[search])")
    model, index, images = untrained("nt-xent")
    built, params = image_index.build_approximate(image_index.for_faiss(index.embeddings, "neg_cosine"), "hnsw")
    index.approximate, index.meta["approximate"] = image_index.faiss_module().serialize_index(built), params
    queries = to_numpy(model.embed(images))
    approximate = image_index.search(index, model, queries, 5)
    exact = image_index.search(index, model, queries, 5, exact=True)
    np.testing.assert_array_equal(approximate[0], exact[0])  # 40 images: HNSW finds them all
    np.testing.assert_allclose(approximate[1], exact[1])


def brute_force_retrieval(points, labels, k):
    """(precision@1, recall@k) by sorting every other point by its distance: the definition, for reference."""
    distances = np.linalg.norm(points[:, None].astype(np.float64) - points[None], axis=2)
    np.fill_diagonal(distances, np.inf)  # an item is not its own neighbour, whatever its duplicates
    order = np.argsort(distances, axis=1, kind="stable")
    hits = labels[order] == labels[:, None]
    return hits[:, 0].mean(), hits[:, :k].any(axis=1).mean()


def test_retrieval_quality_is_leave_one_out_retrieval_by_the_definition(calibrated_checkpoint):
    model, _ = load_model(calibrated_checkpoint())
    held_out = pattern_images(5, seed=8)
    held_out.images[3] = held_out.images[4]  # a duplicate may outrank an image's own entry: still left out
    result = retrieval.retrieval_quality(model, held_out.images, held_out.labels, ks=(1, 3))
    embeddings = to_numpy(model.embed(held_out.images))
    pixels = held_out.images.reshape(len(held_out), -1)
    for found, points in ((result["model"], embeddings), (result["pixels"], pixels)):
        precision, recall = brute_force_retrieval(points, held_out.labels, 3)
        assert found["precision_at_1"] == pytest.approx(precision) and found["recall_at_3"] == pytest.approx(recall)
        assert retrieval.precision_at_1(points, held_out.labels) == found["precision_at_1"]
        assert retrieval.recall_at_k(points, held_out.labels, 3) == found["recall_at_3"]
    assert (result["images"], result["classes"]) == (30, 6)


# ----- index and search commands -----------------------------------------------------------------------------
def index_args(images, checkpoint, out, *more):
    return ["index", str(images), "--checkpoint", str(checkpoint), "--out", str(out), "--quiet", *more]


def test_index_embeds_every_readable_image_and_lists_the_rest(calibrated_checkpoint, collection, tmp_path, capsys):
    checkpoint = calibrated_checkpoint()
    assert main(index_args(collection, checkpoint, tmp_path / "index.npz")) == 0
    captured = capsys.readouterr()
    assert "indexed 24 images (24 in all)" in captured.out
    # README.txt is not named like an image: not even listed
    assert "skipped 1 unreadable file:\n  damaged.png: not a readable image" in captured.err
    with np.load(tmp_path / "index.npz", allow_pickle=False) as stored:  # plain arrays, no pickle
        assert stored["embeddings"].shape == (24, 64) and stored["name_offsets"][-1] == len(stored["names"])
    index = image_index.load_index(tmp_path / "index.npz")
    assert index.names[0] == "pattern0/0.png" and index.meta["approximate"] is None
    model, _ = load_model(checkpoint)
    image = np.asarray(Image.open(collection / "pattern0" / "0.png"), np.float32)[None, None] / 255
    np.testing.assert_allclose(index.embeddings[0], to_numpy(model.embed(image))[0], rtol=1e-5, atol=1e-6)
    # the same images in a zip archive give the same index
    with zipfile.ZipFile(tmp_path / "collection.zip", "w") as archive:
        for path in sorted(collection.rglob("*.png")):
            archive.write(path, path.relative_to(collection).as_posix())
    assert main(index_args(tmp_path / "collection.zip", checkpoint, tmp_path / "zipped.npz")) == 0
    zipped = image_index.load_index(tmp_path / "zipped.npz")
    assert zipped.names == index.names
    np.testing.assert_array_equal(zipped.embeddings, index.embeddings)
    assert zipped.read_file(0) == (collection / "pattern0" / "0.png").read_bytes()


def test_search_finds_the_query_pattern_and_draws_a_contact_sheet(calibrated_checkpoint, collection, tmp_path,
                                                                    capsys):
    assert main(index_args(collection, calibrated_checkpoint(), tmp_path / "index.npz")) == 0
    fresh = pattern_images(1, seed=99)  # new drawings of each pattern, not in the index
    queries = [str(write_png(tmp_path / f"query{label}.png", image)) for image, label in
               zip(fresh.images[[2, 5]], fresh.labels[[2, 5]])]
    sheet = tmp_path / "sheet.png"
    capsys.readouterr()
    assert main(["search", str(tmp_path / "index.npz"), *queries, "-k", "4", "--sheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    headers = [i for i, line in enumerate(lines) if "nearest of" in line]
    assert [lines[i] for i in headers] == [f"{q}: the 4 nearest of 24 images (exact search)" for q in queries]
    assert lines[-1] == f"contact sheet: {sheet}"
    for header, label in zip(headers, (2, 5)):
        rows = [line.split() for line in lines[header + 2:header + 6]]
        assert [row[0] for row in rows] == ["1", "2", "3", "4"]
        distances = [float(row[1]) for row in rows]
        assert distances == sorted(distances)
        assert all(f"/pattern{label}/" in row[2] for row in rows)  # a pattern's 4 images are its 4 nearest
    with Image.open(sheet) as drawn:
        assert drawn.format == "PNG" and drawn.width > drawn.height > 100  # 2 rows of 5 cells


def test_an_indexed_file_is_its_own_nearest(calibrated_checkpoint, collection, tmp_path, capsys):
    query = collection / "pattern3" / "13.png"
    assert main(index_args(collection, calibrated_checkpoint(), tmp_path / "l2.npz")) == 0
    assert main(["search", str(tmp_path / "l2.npz"), str(query), "-k", "1", "--no-sheet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["1", "0.0000", f"{collection}/pattern3/13.png"]
    # Koch's head weighs each feature's |difference| by a learned weight of either sign, so an image need not
    # score highest against itself; its own pattern still comes first
    assert main(index_args(collection, calibrated_checkpoint("koch"), tmp_path / "koch.npz")) == 0
    assert main(["search", str(tmp_path / "koch.npz"), str(query), "-k", "4", "--no-sheet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-5].split()[1] == "logit" and all(f"{collection}/pattern3/" in line for line in out[-4:])


def test_images_are_inverted_for_omniglot_checkpoints_unless_told(calibrated_checkpoint, collection, tmp_path):
    from tinysiam.serialization import read_checkpoint_meta, save_checkpoint

    model, _ = load_model(calibrated_checkpoint())
    omniglot = tmp_path / "omniglot.npz"
    config = read_checkpoint_meta(calibrated_checkpoint())["config"]
    save_checkpoint(omniglot, model, config={**config, "data": "omniglot"})
    for options, inverted in (([], True), (["--no-invert"], False)):
        out = tmp_path / f"index{len(options)}.npz"
        assert main(index_args(collection, omniglot, out, *options)) == 0
        index = image_index.load_index(out)
        assert index.meta["invert"] is inverted
        image = np.asarray(Image.open(collection / index.names[0]), np.float32)[None, None] / 255
        expected = to_numpy(model.embed(1 - image if inverted else image))[0]
        np.testing.assert_allclose(index.embeddings[0], expected, rtol=1e-5, atol=1e-6)


def test_files_below_the_current_folder_are_shown_relative_to_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert search.relative_to_here(f"{tmp_path}/photos/a.png") == "photos/a.png"
    assert search.relative_to_here("/elsewhere/a.png") == "/elsewhere/a.png"


def test_append_adds_only_new_images_from_the_same_checkpoint(calibrated_checkpoint, collection, tmp_path, capsys):
    part = tmp_path / "part"
    for path in sorted(collection.rglob("pattern[01]/*.png")):
        write_png(part / path.relative_to(collection), np.asarray(Image.open(path), np.float32) / 255)
    out = tmp_path / "index.npz"
    assert main(index_args(part, calibrated_checkpoint(), out, "--append")) == 0  # creates it
    write_png(part / "pattern2" / "new.png", pattern_images(1, seed=3).images[2])
    assert main(index_args(part, calibrated_checkpoint(), out, "--append")) == 0
    assert "indexed 1 images (9 in all)" in capsys.readouterr().out
    assert main(index_args(collection, calibrated_checkpoint(), out, "--append")) == 0
    index = image_index.load_index(out)
    assert len(index) == 9 + 24 and len(index.meta["collections"]) == 2
    assert index.location(8) == f"{part}/pattern2/new.png"
    assert main(index_args(collection, calibrated_checkpoint(), out, "--append")) == 0
    assert "nothing to add" in capsys.readouterr().out


@pytest.fixture(scope="module")
def retouched_checkpoint(calibrated_checkpoint, tmp_path_factory):
    """The contrastive checkpoint with one weight changed: same preset and score, other weights."""
    from tinysiam.serialization import read_checkpoint_meta, save_checkpoint

    model, _ = load_model(calibrated_checkpoint())
    next(iter(model.parameters())).data[0] += 0.1
    path = tmp_path_factory.mktemp("retouched") / "retouched.npz"
    save_checkpoint(path, model, config=read_checkpoint_meta(calibrated_checkpoint())["config"])
    return path


@pytest.mark.parametrize("case", ["other weights", "other head", "append other checkpoint", "append other invert",
                                  "exists", "no images", "k too large", "not an index", "nprobe without ivf",
                                  "no such folder"])
def test_bad_input_names_the_argument_and_writes_nothing(case, calibrated_checkpoint, retouched_checkpoint, collection,
                                                         tmp_path, capsys):
    contrastive, koch = calibrated_checkpoint(), calibrated_checkpoint("koch")
    index = tmp_path / "index.npz"
    assert main(index_args(collection, contrastive, index)) == 0
    before = index.read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "broken.jpg").write_text("no pixels here")
    query = str(collection / "pattern0" / "0.png")
    argv, message = {
        "other weights": (["search", str(index), query, "--checkpoint", str(retouched_checkpoint)],
                          f"--checkpoint {retouched_checkpoint} is not the checkpoint {index} was built with (weights"),
        "other head": (["search", str(index), query, "--checkpoint", str(koch)],
                       "(score neg_l2 there, koch_logit here"),
        "append other checkpoint": (index_args(collection, retouched_checkpoint, index, "--append"),
                                    "is not the checkpoint"),
        "append other invert": (index_args(collection, contrastive, index, "--append", "--invert"),
                                "--invert: "),
        "exists": (index_args(collection, contrastive, index), f"--out {index} already exists: pass --append"),
        "no images": (index_args(empty, contrastive, tmp_path / "new.npz"),
                      f"IMAGES: {empty} holds no readable images"),
        "k too large": (["search", str(index), query, "-k", "25"], f"-k 25: {index} holds 24 images"),
        "not an index": (["search", str(contrastive), query], f"INDEX: {contrastive} is not a tinysiam index"),
        "nprobe without ivf": (["search", str(index), query, "--nprobe", "4"], "--nprobe: "),
        "no such folder": (index_args(tmp_path / "nowhere", contrastive, tmp_path / "new.npz"),
                           "IMAGES: no such file or folder"),
    }[case]
    capsys.readouterr()
    sheet = tmp_path / "search.png"
    assert main([*argv, "--sheet", str(sheet)] if argv[0] == "search" else argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("tinysiam: error:")
    assert index.read_bytes() == before and not (tmp_path / "new.npz").exists() and not sheet.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "index.npz"]  # no temporary file left either


# ----- approximate search (FAISS) --------------------------------------------------------------------------
def clustered(n, dim, seed, n_clusters=50):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim)) * 3
    return (centres[rng.integers(0, n_clusters, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def test_without_faiss_an_approximate_index_asks_for_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "faiss", None)  # import faiss now fails
    assert image_index.choose_method("auto", 10 ** 7, "neg_l2") == "exact"
    with pytest.raises(ImportError, match=r"pip install tinysiam\[search\]"):
        image_index.build_approximate(clustered(100, 4, 0), "ivf")


def test_choose_method_by_size_and_head():
    assert image_index.choose_method("auto", image_index.AUTO_APPROXIMATE - 1, "neg_l2") == "exact"
    assert image_index.choose_method("auto", 10 ** 7, "koch_logit") == "exact"
    with pytest.raises(ValueError, match="--method hnsw: this model scores pairs by Koch's head"):
        image_index.choose_method("hnsw", 100, "koch_logit")
    with pytest.raises(ValueError, match="--method hnsw: this model scores pairs by a relation module"):
        image_index.choose_method("hnsw", 100, "relation_score")
    with pytest.raises(ValueError, match="--method ivf: this model scores pairs by L1 distance"):
        image_index.choose_method("ivf", 100, "neg_l1")
    assert image_index.choose_method("ivf", 100, "neg_cosine") == "ivf"


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_faiss_finds_nearly_what_exact_search_finds(method):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install tinysiam[search])")
    items, queries = clustered(5000, 16, 0), clustered(200, 16, 1)
    index, params = image_index.build_approximate(items, method)
    found, squared = image_index.approximate_nearest(index, params, queries, 10)
    exact, _ = retrieval.nearest(queries, items, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
    assert recall > 0.9, recall
    distances = np.linalg.norm(queries[:, None] - items[found], axis=2)
    np.testing.assert_allclose(np.sqrt(squared), distances, rtol=1e-3, atol=1e-3)  # FAISS's distances are L2^2
    assert image_index.choose_method("auto", image_index.AUTO_APPROXIMATE, "neg_l2") == "hnsw"
    assert image_index.choose_method("auto", image_index.AUTO_HNSW_MAX, "neg_l2") == "hnsw"
    assert image_index.choose_method("auto", image_index.AUTO_HNSW_MAX + 1, "neg_l2") == "ivf"


def test_faiss_index_is_stored_and_used_by_search(calibrated_checkpoint, collection, tmp_path, capsys):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install tinysiam[search])")
    out = tmp_path / "index.npz"
    assert main(index_args(collection, calibrated_checkpoint(), out, "--method", "ivf")) == 0
    assert "FAISS IVF-Flat" in capsys.readouterr().out
    assert image_index.load_index(out).approximate.dtype == np.uint8
    query = str(collection / "pattern4" / "16.png")
    results = {}
    for extra in ([], ["--exact"], ["--nprobe", "1"]):
        assert main(["search", str(out), query, "-k", "3", "--no-sheet", *extra]) == 0
        results[" ".join(extra)] = capsys.readouterr().out
    assert "approximate search, FAISS IVF" in results[""] and "(exact search)" in results["--exact"]
    # with 24 images in 1 list (at least 39 per list), every probe sees every image: the same answer as exact
    assert results[""].splitlines()[2:] == results["--exact"].splitlines()[2:]
    assert main(["search", str(out), query, "--ef-search", "8", "--no-sheet"]) == 2
    assert "--ef-search: " in capsys.readouterr().err


def test_scale_benchmark_smoke(tmp_path):
    """benchmarks/search.py scale at tiny sizes: every row is measured, exact search is exact, FAISS converges."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "search.py"
    spec = importlib.util.spec_from_file_location("search_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    argv = ["scale", "--smoke", "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")]
    assert benchmark.main(argv) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    table = (tmp_path / "r.md").read_text()
    assert table.startswith("## Image search at scale")
    sizes = [size for part in report["distributions"] for size in part["sizes"]]
    assert [part["latent"] for part in report["distributions"]] == [16, 64] and len(sizes) == 4
    for size in sizes:
        measured = [row for row in size["rows"] if "not_run" not in row]
        assert measured[0]["method"] == "exact (tinysiam, NumPy)" and measured[0]["recall"] == 1.0  # vs float64
        for row in measured:
            assert row["queries_per_s"] > 0 and f"| {size['images']:,} | {row['method']} | {row['setting']}" in table
        ivf = [row["recall"] for row in measured if row["method"] == "FAISS IVF-Flat"]
        assert ivf == sorted(ivf)  # more lists probed: a superset of the candidates
        for method in ("FAISS IVF-Flat", "FAISS HNSW-Flat"):
            sweep = [row["recall"] for row in measured if row["method"] == method]
            assert not sweep or sweep[-1] >= 0.95, (method, sweep)
    faiss_rows = [row for size in sizes for row in size["rows"] if row["method"].startswith("FAISS ")]
    assert image_index.faiss_available() == bool(faiss_rows)


def test_search_with_a_demo_checkpoint_finds_what_eval_scores_on_lakes_runs(data_root, tmp_path, capsys):
    """The data-set registry says the demo's data stores its ink inverted: index and search invert Lake's PNG files
    for its checkpoint without being told, and the nearest support image of each query is the one eval picks."""
    from tinysiam.app.config import TrainConfig
    from tinysiam.app.model import SiameseModel
    from tinysiam.app.recipes import RECIPES
    from tinysiam.evaluation.oneshot import load_lake_runs
    from tinysiam.serialization import save_checkpoint

    config = TrainConfig(**RECIPES["omniglot-demo"])  # untrained weights: what matters is how images are read
    checkpoint = tmp_path / "demo.npz"
    save_checkpoint(checkpoint, SiameseModel(config, rng=np.random.default_rng(0)), config=config.to_dict())
    model, _ = load_model(checkpoint)
    with zipfile.ZipFile(data_root / "omniglot" / "all_runs.zip") as archive:
        archive.extractall(tmp_path / "runs", [n for n in archive.namelist() if n.startswith(("run01/", "run02/"))])
    for run in load_lake_runs(data_root / "omniglot" / "all_runs.zip", size=(28, 28))[:2]:
        picked = np.argmax(model.similarity(run.queries, run.supports), axis=1)  # what eval scores
        folder = tmp_path / "runs" / run.name
        capsys.readouterr()
        assert main(index_args(folder / "training", checkpoint, tmp_path / f"{run.name}.npz")) == 0
        assert "inverted" in capsys.readouterr().out
        queries = sorted((folder / "test").glob("item*.png"))
        assert main(["search", str(tmp_path / f"{run.name}.npz"), *map(str, queries), "-k", "1", "--no-sheet"]) == 0
        found = [line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["1"]]
        assert found == [str(folder / "training" / f"class{c + 1:02d}.png") for c in picked]
