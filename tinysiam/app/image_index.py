"""The search index file of ``tinysiam index``, its optional FAISS approximate index, and searching it.

The index is one ``.npz`` file, written atomically and read without pickle:

    embeddings      float32 (N, D): one row per image ((N, C, H, W) feature maps for a relation module)
    names           uint8: the N file names (relative to their collection), utf-8, one after the other
    name_offsets    int64 (N + 1,): name i is names[name_offsets[i]:name_offsets[i + 1]]
    collection_ids  int32 (N,): the entry of meta["collections"] each image came from
    faiss           uint8, only with an approximate index: the FAISS index (faiss.serialize_index)
    meta            uint8: utf-8 JSON {"format": "tinysiam-index", "version": 1,
                    "checkpoint": {"path", "weights_sha256", "preset", "input_size", "score"},
                    "invert": bool, "collections": [absolute paths],
                    "approximate": null, {"method": "ivf", "nlist", "nprobe"} or {"method": "hnsw", "m", "ef_search"}}

Search is exact by default (``tinysiam.evaluation.retrieval.nearest``: bounded
blocks, NumPy or CuPy). With FAISS installed (``pip install tinysiam[search]``),
large collections also get an approximate index (IVF or HNSW) built from the
same embeddings; ``search --exact`` ignores it. Images are ranked as the model
scores pairs (``score_kind``): by the distance their loss trained the
embeddings for (L2, cosine, L1), or by a learned head (Koch's logit, a relation
module's score), which scores every query-image pair itself. FAISS indexes L2
and cosine (as L2 between unit vectors, which ranks alike); L1 and learned
heads are searched exactly.
"""
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine import backend
from ..evaluation.retrieval import LEARNED, nearest, ranking, unit_rows
from ..serialization import read_npz, write_npz_atomic
from .errors import UserError, blame

INDEX_FORMAT, INDEX_VERSION = "tinysiam-index", 1
METHODS = ("auto", "exact", "ivf", "hnsw")
# --method auto, from benchmarks/RESULTS.md ("Image search at scale", 2 cores): below AUTO_APPROXIMATE images
# exact search answers one query in milliseconds; HNSW (M 32, efSearch 64: recall@10 0.99+ on rank-16
# embeddings) up to AUTO_HNSW_MAX, built in about a minute there; IVF-Flat above, where HNSW's build time and
# memory (2x the embeddings) grow too large for a small machine
AUTO_APPROXIMATE, AUTO_HNSW_MAX = 100_000, 1_000_000
HNSW_M, HNSW_EF_SEARCH = 32, 64
# IVF-Flat: about 4 sqrt(N) lists (FAISS's guideline), at most IVF_MAX_LISTS, k-means on 64 points per list
# (the build stays under a minute at 10^7 images); nprobe 64: recall@10 0.94-0.98 on rank-16 embeddings
IVF_MAX_LISTS, IVF_TRAINING_PER_LIST, IVF_NPROBE = 4096, 64, 64
APPROXIMABLE = ("neg_l2", "neg_cosine")  # the scores FAISS can rank by


# ----- the index file -------------------------------------------------------------------------
@dataclass
class ImageIndex:
    embeddings: np.ndarray  # float32 (N, D)
    names: list  # file names inside their collection
    collection_ids: np.ndarray  # int32 (N,)
    meta: dict
    approximate: np.ndarray = None  # the serialized FAISS index, or None

    def __len__(self):
        return len(self.names)

    def location(self, i):
        """Where image ``i`` came from: its collection (folder or zip archive) joined with its name."""
        return f"{self.meta['collections'][self.collection_ids[i]]}/{self.names[i]}"

    def read_file(self, i):
        """The bytes of image ``i``, read again from its collection."""
        collection = Path(self.meta["collections"][self.collection_ids[i]])
        if collection.is_dir():
            return (collection / self.names[i]).read_bytes()
        with zipfile.ZipFile(collection) as archive:
            return archive.read(self.names[i])


def save_index(index, path):
    encoded = [name.encode() for name in index.names]
    arrays = {"embeddings": index.embeddings.astype(np.float32),
              "names": np.frombuffer(b"".join(encoded), dtype=np.uint8),
              "name_offsets": np.r_[0, np.cumsum([len(e) for e in encoded], dtype=np.int64)],
              "collection_ids": index.collection_ids.astype(np.int32),
              "meta": np.frombuffer(json.dumps(index.meta).encode(), dtype=np.uint8)}
    if index.approximate is not None:
        arrays["faiss"] = index.approximate
    write_npz_atomic(path, arrays)


def load_index(path, argument="INDEX"):
    """The index at ``path``; a missing, damaged or foreign file is a UserError naming ``argument``."""
    with blame(argument):
        arrays = read_npz(path)
    meta = json.loads(arrays["meta"].tobytes()) if "meta" in arrays else {}
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise UserError(f"{argument}: {path} is not a tinysiam index (write one with `tinysiam index`)")
    if meta["version"] != INDEX_VERSION:
        raise UserError(f"{argument}: {path} is a version {meta['version']} index; this tinysiam reads "
                        f"version {INDEX_VERSION}: rebuild it with `tinysiam index`")
    names, offsets = arrays["names"].tobytes(), arrays["name_offsets"]
    return ImageIndex(arrays["embeddings"], [names[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:])],
                      arrays["collection_ids"], meta, arrays.get("faiss"))


def check_same_checkpoint(meta, identity, index_name):
    """Refuse a checkpoint other than the one the index was built with: its embeddings would not compare."""
    built = meta["checkpoint"]
    for key, what in (("preset", "preset"), ("input_size", "input size"), ("score", "score"),
                      ("weights_sha256", "weights")):
        if built[key] != identity[key]:
            raise UserError(f"--checkpoint {identity['path']} is not the checkpoint {index_name} was built with "
                             f"({what} {built[key]} there, {identity[key]} here; built with {built['path']}): "
                             "use that checkpoint, or build a new index")


# ----- approximate search (FAISS) ---------------------------------------------------------------------
def faiss_module():
    try:
        import faiss
    except ImportError:
        raise ImportError("approximate search needs FAISS: pip install tinysiam[search] (faiss-cpu)") from None
    return faiss


def faiss_available():
    try:
        faiss_module()
    except ImportError:
        return False
    return True


def choose_method(method, n_images, kind):
    """"exact", "ivf" or "hnsw" for ``--method`` (``auto``: by collection size, when FAISS is installed and
    can rank by the model's score ``kind``)."""
    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        if kind not in APPROXIMABLE or n_images < AUTO_APPROXIMATE or not faiss_available():
            return "exact"
        return "hnsw" if n_images <= AUTO_HNSW_MAX else "ivf"
    if method != "exact" and kind not in APPROXIMABLE:
        how = LEARNED.get(kind, "L1 distance")
        raise ValueError(f"--method {method}: this model scores pairs by {how}, which the approximate index does "
                         "not rank by; use --method exact")
    return method


def build_approximate(embeddings, method):
    """(FAISS index over ``embeddings`` by L2, its parameters as a JSON-able dict) for "ivf" or "hnsw"."""
    faiss = faiss_module()
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = embeddings.shape
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M)
        index.add(embeddings)
        return index, {"method": "hnsw", "m": HNSW_M, "ef_search": HNSW_EF_SEARCH}
    nlist = max(1, min(int(4 * np.sqrt(n)), IVF_MAX_LISTS, n // 39))  # k-means wants 39+ points per list
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
    index.cp.max_points_per_centroid = IVF_TRAINING_PER_LIST  # FAISS draws this many per list (seeded) to train
    index.train(embeddings)
    index.add(embeddings)
    return index, {"method": "ivf", "nlist": nlist, "nprobe": min(IVF_NPROBE, nlist)}


def approximate_nearest(index, params, queries, k, nprobe=None, ef_search=None):
    """(indices, squared L2 distances) from a FAISS index; an index -1 marks a neighbour it did not find."""
    if params["method"] == "ivf":
        index.nprobe = nprobe or params["nprobe"]
    else:
        faiss_module().downcast_index(index).hnsw.efSearch = max(ef_search or params["ef_search"], k)
    distances, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return indices, distances


def for_faiss(embeddings, kind):
    """The vectors FAISS indexes for a model of ``score_kind`` ``kind``: unit vectors for cosine (L2 between
    them ranks as the cosine does), the embeddings themselves for L2."""
    return backend.to_numpy(unit_rows(embeddings) if kind == "neg_cosine" else embeddings)


def search(index, model, queries, k, exact=False, nprobe=None, ef_search=None, device="cpu"):
    """(indices, scores) of the k indexed images nearest to each query embedding, best first.

    Scores are ``model.score_embeddings`` of each query and found image
    (higher = more alike), the very scores ``verify`` compares; the search
    itself ranks distances by a cheaper equivalent. Uses the index's approximate index
    unless ``exact`` (or there is none); a neighbour it did not reach has index
    -1 and score -inf.
    """
    kind = index.meta["checkpoint"]["score"]
    if not 1 <= k <= len(index):
        raise ValueError(f"-k {k}: the index holds {len(index)} images; k must be between 1 and {len(index)}")
    with model.evaluating():
        if index.approximate is not None and not exact:
            approximate = faiss_module().deserialize_index(index.approximate)
            indices, _ = approximate_nearest(approximate, index.meta["approximate"], for_faiss(queries, kind), k,
                                             nprobe, ef_search)
        else:
            score_fn, block_pairs = ranking(kind, model, int(np.prod(index.embeddings.shape[1:])))
            on = "cpu" if kind in LEARNED else device  # a head moves the pairs it scores to the model's device itself
            indices, _ = nearest(backend.to_device(queries, on), backend.to_device(index.embeddings, on), k, score_fn,
                                 block_pairs)
            indices = backend.to_numpy(indices)
        queries = backend.to_numpy(queries)
        scores = model.score_embeddings(np.repeat(queries, k, axis=0), index.embeddings[np.maximum(indices, 0).ravel()])
        scores = np.where(indices < 0, -np.inf, scores.reshape(indices.shape))
        order = np.argsort(-scores, axis=1, kind="stable")  # measured from the rows themselves: exact, 0 for itself
        return np.take_along_axis(indices, order, axis=1), np.take_along_axis(scores, order, axis=1)


def describe_method(params):
    if params is None:
        return "exact search"
    if params["method"] == "ivf":
        return f"exact or approximate search (FAISS IVF-Flat, {params['nlist']} lists, nprobe {params['nprobe']})"
    return f"exact or approximate search (FAISS HNSW, M {params['m']}, efSearch {params['ef_search']})"
