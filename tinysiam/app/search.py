"""Image search with a trained model: ``tinysiam index`` embeds a collection, ``tinysiam search`` finds neighbours.

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

Search is exact by default: every indexed embedding is scored against the
queries in blocks of ``BLOCK_PAIRS`` scores, on NumPy or CuPy, so memory stays
bounded for any collection size. With FAISS installed (``pip install
tinysiam[search]``), large collections also get an approximate index (IVF or
HNSW) built from the same embeddings; ``search --exact`` ignores it.
Images are ranked as the model scores pairs (``score_kind``): by the distance
their loss trained the embeddings for (L2, cosine, L1), or by a learned head
(Koch's logit, a relation module's score), which scores every query-image
pair itself. FAISS indexes L2 and cosine (as L2 between unit vectors, which
ranks alike); L1 and learned heads are searched exactly.
"""
import argparse
import io
import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.datasets import iter_members, pillow
from ..engine import backend
from ..serialization import read_npz, write_npz_atomic
from ..siamese.distances import clamped_norm, pairwise_distances, squared_norms
from .errors import UserError, blame
from .presets import get_preset
from .trained import INVERT_HELP, IMAGE_SUFFIXES, checkpoint_identity, decode_for_model, inverts, \
    load_trained, read_image_files

INDEX_FORMAT, INDEX_VERSION = "tinysiam-index", 1
METHODS = ("auto", "exact", "ivf", "hnsw")
BLOCK_PAIRS = 1 << 22  # query-item scores held at once by exact search (16 MiB of float32)
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
LEARNED = {"koch_logit": "Koch's head (learned pair weights)", "relation_score": "a relation module"}


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


# ----- exact search ---------------------------------------------------------------------------------
def l2_ranking(queries, items):
    """(n_queries, n_items) scores that rank items as minus their squared L2 distance to the query does.

    They are 2 q.x - |x|^2: minus the squared distance plus |q|^2, the same for
    all of a query's items, so one matrix product and one subtraction.
    """
    scores = queries @ items.T
    scores *= 2
    scores -= squared_norms(items)
    return scores


def cosine_ranking(queries, items):
    """(n_queries, n_items) cosine similarities (norms clamped at NORM_EPS, as the cosine distance does)."""
    return (unit_rows(queries) @ items.T) / clamped_norm(items)[0]


def unit_rows(rows):
    """Each row divided by its L2 norm (at least NORM_EPS)."""
    return rows / clamped_norm(rows)[0][:, None]


def l1_ranking(queries, items):
    """(n_queries, n_items) minus the L1 distances."""
    return -pairwise_distances(queries, items, "l1")


def ranking(kind, model=None, item_size=1):
    """(score_fn, block_pairs) with which ``nearest`` ranks items as a model of ``score_kind`` ``kind`` does.

    A learned head scores every query-item pair itself (``model.embedding_similarity``, NumPy out), and L1
    holds a (queries, items, D) difference, so their blocks are ``item_size`` (values per item) times smaller.
    """
    if kind in LEARNED:
        return model.embedding_similarity, max(1, BLOCK_PAIRS // item_size)
    if kind == "neg_l1":
        return l1_ranking, max(1, BLOCK_PAIRS // item_size)
    return {"neg_l2": l2_ranking, "neg_cosine": cosine_ranking}[kind], BLOCK_PAIRS


def nearest(queries, items, k, score_fn=l2_ranking, block_pairs=BLOCK_PAIRS):
    """(indices, scores), each (n_queries, k): the k items with the highest ``score_fn`` for each query, best first.

    Exact: every item is scored, keeping a running top k, in blocks of about
    ``block_pairs`` query-item scores (and at most ``block_pairs`` item values),
    so memory does not grow with the number of items. NumPy or CuPy arrays;
    the results live on the same device.
    """
    xp = backend.xp_of(items)
    if not 1 <= k <= len(items):
        raise ValueError(f"k must be between 1 and the number of items ({len(items)}), got {k}")
    query_rows = min(len(queries), 1024, max(1, block_pairs // k))
    item_rows = max(k, min(block_pairs // query_rows, block_pairs // int(np.prod(items.shape[1:]))))
    found_indices, found_scores = [], []
    for q in range(0, len(queries), query_rows):
        block = queries[q:q + query_rows]
        best_scores = best_indices = None
        for start in range(0, len(items), item_rows):
            scores = score_fn(block, items[start:start + item_rows])
            indices = xp.broadcast_to(xp.arange(start, start + scores.shape[1]), scores.shape)
            if best_scores is None:
                rows = slice(None)
            else:  # merge only the queries whose k-th best so far this block beats: few, once k good ones are found
                rows = xp.flatnonzero((scores > best_scores.min(axis=1, keepdims=True)).any(axis=1))
                if len(rows) == 0:
                    continue
                scores = xp.concatenate([best_scores[rows], scores[rows]], axis=1)
                indices = xp.concatenate([best_indices[rows], indices[rows]], axis=1)
            if scores.shape[1] > k:
                keep = xp.argpartition(-scores, k - 1, axis=1)[:, :k]
                scores, indices = xp.take_along_axis(scores, keep, axis=1), xp.take_along_axis(indices, keep, axis=1)
            if best_scores is None:
                best_scores, best_indices = scores, indices.copy()  # a copy: the broadcast view is read-only
            else:
                best_scores[rows], best_indices[rows] = scores, indices
        order = xp.argsort(-best_scores, axis=1)
        found_scores.append(xp.take_along_axis(best_scores, order, axis=1))
        found_indices.append(xp.take_along_axis(best_indices, order, axis=1))
    return xp.concatenate(found_indices), xp.concatenate(found_scores)


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


# ----- building an index ----------------------------------------------------------------------------
def embed_collection(model, collection, size, invert, batch_size=256, already=frozenset(), progress=True):
    """(embeddings or None, names, skipped) of the images in a folder or zip archive, embedded batch by batch.

    Files are taken by their suffix (IMAGE_SUFFIXES, lower or upper case); names in
    ``already`` are left out; files that do not decode are skipped and listed
    in ``skipped`` as "name: reason". Errors name the argument IMAGES.
    """
    from tqdm.auto import tqdm

    suffixes = tuple(s for suffix in IMAGE_SUFFIXES for s in (suffix, suffix.upper()))
    names, chunks, skipped, batch = [], [], [], []

    def embed_batch():
        chunks.append(backend.to_numpy(model.embed(np.concatenate(batch), batch_size)).astype(np.float32))
        batch.clear()

    for name, data in tqdm(collection_files(collection, suffixes), desc="embedding", unit=" images",
                           mininterval=0.5, disable=not (progress and sys.stderr.isatty())):
        if name in already:
            continue
        try:
            batch.append(decode_for_model([(name, data)], size, invert))
        except ValueError as error:
            skipped.append(str(error))
            continue
        names.append(name)
        if len(batch) == batch_size:
            embed_batch()
    if batch:
        embed_batch()
    return (np.concatenate(chunks) if chunks else None), names, skipped


def collection_files(collection, suffixes):
    """``iter_members`` of the collection; a missing folder or a damaged archive is a UserError naming IMAGES."""
    with blame("IMAGES"):
        yield from iter_members(collection, suffixes)


def add_index_parser(subparsers):
    p = subparsers.add_parser("index", help="embed every image of a folder or zip archive into a search index")
    p.add_argument("images", metavar="IMAGES", help="a folder (searched recursively) or a zip archive of images")
    p.add_argument("--checkpoint", required=True, help="the trained checkpoint that embeds the images")
    p.add_argument("--out", required=True, metavar="INDEX", help="the index file to write (.npz)")
    p.add_argument("--append", action="store_true",
                   help="add the images not yet in INDEX to it (creating it if needed); same checkpoint only")
    p.add_argument("--overwrite", action="store_true", help="replace INDEX if it exists")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help=f"exact search only, or also a FAISS approximate index; auto: exact below "
                        f"{AUTO_APPROXIMATE:,} images, HNSW up to {AUTO_HNSW_MAX:,}, IVF-Flat above "
                        "(when FAISS is installed)")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, help=INVERT_HELP)
    p.add_argument("--batch", type=int, default=256, help="images embedded at once (default 256)")
    p.add_argument("--device", choices=backend.DEVICES, default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_index(args, given=None):
    """``tinysiam index``; ``given`` (training options) is unused: every command takes (args, given)."""
    out = Path(args.out)
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    if args.append and args.overwrite:
        raise UserError("give --append or --overwrite, not both")
    if out.exists() and not (args.append or args.overwrite):
        raise UserError(f"--out {out} already exists: pass --append to add images to it or --overwrite to replace it")
    model, config, _ = load_trained(args.checkpoint, args.device)
    identity, invert = checkpoint_identity(args.checkpoint, model, config), inverts(config, args.invert)
    existing = load_index(out, "--out") if args.append and out.exists() else None
    if existing is not None:
        check_same_checkpoint(existing.meta, identity, out)
        if existing.meta["invert"] != invert:
            raise UserError(f"--invert: {out} holds images {'' if existing.meta['invert'] else 'not '}inverted; "
                            "the new ones must be prepared alike")
    collection = str(Path(args.images).resolve())
    collections = list(existing.meta["collections"]) if existing is not None else []
    if collection not in collections:
        collections.append(collection)
    collection_id = collections.index(collection)
    already = set() if existing is None else \
        {name for name, c in zip(existing.names, existing.collection_ids) if c == collection_id}

    preset = get_preset(config.preset)
    print(f"indexing {relative_to_here(collection)} with {args.checkpoint} ({config.preset} preset: "
          f"{preset.input_size[0]}x{preset.input_size[1]} images{', inverted' if invert else ''}, "
          f"{preset.embedding_size}-d embeddings)", flush=True)
    embeddings, names, skipped = embed_collection(model, args.images, preset.input_size, invert, args.batch,
                                                  already, progress=not args.quiet)
    if skipped:
        print(f"skipped {len(skipped)} unreadable file{'s' * (len(skipped) > 1)}:", file=sys.stderr)
        for line in skipped:
            print(f"  {line}", file=sys.stderr)
    if not names:
        if already:
            print(f"nothing to add: {out} already holds the {len(already)} images of {collection}")
            return 0
        raise UserError(f"IMAGES: {args.images} holds no readable images (files ending in {', '.join(IMAGE_SUFFIXES)})")

    ids = np.full(len(names), collection_id, dtype=np.int32)
    if existing is not None:
        embeddings = np.concatenate([existing.embeddings, embeddings])
        names, ids = existing.names + names, np.concatenate([existing.collection_ids, ids])
    with blame():  # the message names --method
        method = choose_method(args.method, len(names), identity["score"])
    if args.method == "auto" and method == "exact" and len(names) >= AUTO_APPROXIMATE \
            and identity["score"] in APPROXIMABLE:
        print("FAISS is not installed, so searches will be exact "
              "(pip install tinysiam[search] for an approximate index)")
    approximate, params = None, None
    if method != "exact":
        try:
            built, params = build_approximate(for_faiss(embeddings, identity["score"]), method)
        except ImportError as error:
            raise UserError(f"--method {method}: {error}") from None
        approximate = faiss_module().serialize_index(built)
    meta = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "checkpoint": identity, "invert": invert,
            "collections": collections, "approximate": params}
    try:
        save_index(ImageIndex(embeddings, names, ids, meta, approximate), out)
    except OSError as error:
        raise UserError(f"--out {out}: cannot write it ({error.strerror or error})") from None
    added = len(names) - (len(existing) if existing is not None else 0)
    print(f"indexed {added} images ({len(names)} in all) into {out}: {describe_method(params)}")
    return 0


def describe_method(params):
    if params is None:
        return "exact search"
    if params["method"] == "ivf":
        return f"exact or approximate search (FAISS IVF-Flat, {params['nlist']} lists, nprobe {params['nprobe']})"
    return f"exact or approximate search (FAISS HNSW, M {params['m']}, efSearch {params['ef_search']})"


# ----- searching --------------------------------------------------------------------------------------
def add_search_parser(subparsers):
    p = subparsers.add_parser("search", help="the images of an index nearest to query images, and a contact sheet")
    p.add_argument("index", metavar="INDEX", help="an index written by `tinysiam index`")
    p.add_argument("queries", metavar="QUERY", nargs="+", help="query image files (resized like the indexed ones)")
    p.add_argument("-k", type=int, default=5, help="neighbours per query (default 5)")
    p.add_argument("--checkpoint", help="the checkpoint the index was built with (default: the path it recorded)")
    p.add_argument("--exact", action="store_true", help="exact search even where the index has an approximate one")
    p.add_argument("--nprobe", type=int, help="IVF lists visited per query (more: slower, nearer to exact)")
    p.add_argument("--ef-search", type=int, help="HNSW candidates kept per query (more: slower, nearer to exact)")
    p.add_argument("--sheet", default="search.png", help="contact sheet PNG: each query and its neighbours "
                                                        "(default search.png)")
    p.add_argument("--no-sheet", action="store_true", help="print the neighbours only")
    p.add_argument("--device", choices=backend.DEVICES, default="cpu")


def run_search(args, given=None):
    """``tinysiam search``; ``given`` (training options) is unused: every command takes (args, given)."""
    index = load_index(args.index)
    approximate = index.meta["approximate"]
    for option, value, method in (("--nprobe", args.nprobe, "ivf"), ("--ef-search", args.ef_search, "hnsw")):
        if value is not None and value < 1:
            raise UserError(f"{option} must be at least 1, got {value}")
        if value is not None and (approximate is None or approximate["method"] != method):
            raise UserError(f"{option}: {args.index} has no {method.upper()} index ({describe_method(approximate)})")
    if not 1 <= args.k <= len(index):
        raise UserError(f"-k {args.k}: {args.index} holds {len(index)} images; k must be between 1 and {len(index)}")
    checkpoint = args.checkpoint or index.meta["checkpoint"]["path"]
    if args.checkpoint is None and not Path(checkpoint).is_file():
        raise UserError(f"--checkpoint: {args.index} was built with {checkpoint}, which is no longer there; "
                        "pass the checkpoint's new path")
    model, config, _ = load_trained(checkpoint, args.device)
    check_same_checkpoint(index.meta, checkpoint_identity(checkpoint, model, config), args.index)
    queries = read_image_files(args.queries, get_preset(config.preset).input_size, index.meta["invert"], "QUERY")
    exact = args.exact or approximate is None
    try:
        indices, scores = search(index, model, model.embed(queries), args.k, exact, args.nprobe, args.ef_search,
                                 args.device)
    except ImportError as error:
        raise UserError(f"{args.index} holds an approximate index: {error}; or pass --exact") from None
    how = "exact search" if exact else f"approximate search, FAISS {approximate['method'].upper()}"
    kind = index.meta["checkpoint"]["score"]
    value_name, values = ("distance", -scores) if kind.startswith("neg_") else \
        ("logit" if kind == "koch_logit" else "score", scores)
    for query, row, row_values in zip(args.queries, indices, values):
        print(f"{query}: the {args.k} nearest of {len(index)} images ({how})")
        print(f"  rank  {value_name:>8}  file")
        for rank, (i, value) in enumerate(zip(row, row_values), start=1):
            if i >= 0:  # FAISS marks neighbours it did not reach with -1
                print(f"  {rank:4d}  {value:8.4f}  {relative_to_here(index.location(i))}")
        if (row < 0).any():
            print(f"  (the approximate index reached only {int((row >= 0).sum())}: raise --nprobe or --ef-search, "
                  "or pass --exact)")
    if not args.no_sheet:
        try:
            write_contact_sheet(index, args.queries, indices, values, value_name, args.sheet)
        except OSError as error:
            raise UserError(f"--sheet {args.sheet}: cannot write it ({error.strerror or error})") from None
        print(f"contact sheet: {args.sheet}")
    return 0


def relative_to_here(path):
    """``path`` relative to the current folder when it lies below it (shorter to read), else unchanged."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def thumbnail(data, size=128):
    """An image file's bytes as an RGB uint8 array at most ``size`` pixels wide and high; None if unreadable."""
    Image = pillow()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB")
    except (OSError, SyntaxError, ValueError):
        return None
    image.thumbnail((size, size))
    return np.asarray(image)


def write_contact_sheet(index, query_paths, indices, values, value_name, path):
    """Each query image and its neighbours, captioned with rank, value and file name, as one PNG."""
    from ..evaluation.plots import plot_contact_sheet

    neighbours, captions = [], []
    for row, row_values in zip(indices, values):
        found = [(i, value) for i, value in zip(row, row_values) if i >= 0]
        neighbours.append([thumbnail(_read_or_none(index, i)) for i, _ in found])
        captions.append([f"{rank}. {value_name} {value:.3f}\n{short_name(index.names[i])}"
                         for rank, (i, value) in enumerate(found, start=1)])
    queries = [thumbnail(Path(q).read_bytes()) for q in query_paths]
    return plot_contact_sheet(queries, [f"query\n{short_name(q)}" for q in query_paths], neighbours, captions, path)


def _read_or_none(index, i):
    """The file's bytes, or None where its collection has moved or changed since indexing (drawn blank)."""
    try:
        return index.read_file(i)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def short_name(path, parts=2):
    """The last ``parts`` components of a path: enough to tell files apart on a contact sheet."""
    return "/".join(str(path).replace("\\", "/").split("/")[-parts:])


# ----- retrieval quality ------------------------------------------------------------------------------
def leave_one_out_neighbours(points, k, score_fn=l2_ranking, block_pairs=BLOCK_PAIRS):
    """(N, k) indices of each point's k nearest other points, by exact search."""
    indices, _ = nearest(points, points, k + 1, score_fn, block_pairs)
    indices = backend.to_numpy(indices)
    itself = indices == np.arange(len(indices))[:, None]
    # move each point's own entry to the end (a duplicate point may outrank it), then drop the last column
    return np.take_along_axis(indices, np.argsort(itself, axis=1, kind="stable"), axis=1)[:, :k]


def retrieval_scores(neighbours, labels, ks):
    """precision@1 and recall@k (some same-label item among the first k) of ranked neighbour indices."""
    hits = labels[neighbours] == labels[:, None]
    return {"precision_at_1": float(hits[:, 0].mean()),
            **{f"recall_at_{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}}


def retrieval_quality(model, images, labels, ks=(1, 5, 10)):
    """Each image searched among all the others, ranked as ``tinysiam search`` ranks (exact), next to raw-pixel
    (L2) search.

    Returns {"images", "classes", "model": {"precision_at_1", "recall_at_1", ...}, "pixels": {...}}.
    """
    labels = np.asarray(labels)
    if not 1 <= max(ks) < len(labels):
        raise ValueError(f"ks must lie between 1 and {len(labels) - 1} (the other images), got {ks}")
    kind = model.score_kind
    with model.evaluating():
        embeddings = model.embed(images)
        if kind in LEARNED:  # the head scores on the model's device from NumPy rows
            embeddings = backend.to_numpy(embeddings)
        ranked = leave_one_out_neighbours(embeddings, max(ks),
                                          *ranking(kind, model, int(np.prod(embeddings.shape[1:]))))
    pixels = leave_one_out_neighbours(np.asarray(images).reshape(len(images), -1), max(ks))
    return {"images": len(images), "classes": int(len(np.unique(labels))),
            "model": retrieval_scores(ranked, labels, ks), "pixels": retrieval_scores(pixels, labels, ks)}
