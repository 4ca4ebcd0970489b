"""Search with a trained model: ``tinysiam index`` embeds a collection, ``tinysiam search`` finds neighbours.

A collection is a folder or zip archive of images, or, for a model of sentences, a
UTF-8 text file of one sentence a line (the queries are then sentences too). The
commands only: the index file, its FAISS index and the search itself are in
``image_index.py``; exact nearest neighbours in ``tinysiam.evaluation.retrieval``.
"""
import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..data.datasets import iter_members, pillow
from ..engine import backend
from .errors import UserError, blame
from .image_index import (
    APPROXIMABLE,
    AUTO_APPROXIMATE,
    AUTO_HNSW_MAX,
    INDEX_FORMAT,
    INDEX_VERSION,
    METHODS,
    ImageIndex,
    build_approximate,
    check_same_checkpoint,
    choose_method,
    describe_method,
    faiss_module,
    for_faiss,
    load_index,
    save_index,
    search,
)
from .presets import get_preset
from .trained import (
    IMAGE_SUFFIXES,
    INVERT_HELP,
    checkpoint_identity,
    decode_for_model,
    inverts,
    load_trained,
    read_image_files,
)


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


def embed_sentences(model, path, batch_size=256, already=frozenset()):
    """(embeddings or None, sentences, []) of the non-empty lines of a UTF-8 text file (those not ``already`` in
    the index); errors name the argument IMAGES."""
    sentences = [s for s in read_sentences(path, "IMAGES") if s not in already]
    return (model.embed(sentences, batch_size) if sentences else None), sentences, []


def read_sentences(path, argument):
    """The non-empty lines of the UTF-8 text file ``path``, stripped; a problem is a UserError naming ``argument``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{argument}: {path} is not a text file (one sentence a line)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{argument}: {path} is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise UserError(f"{argument}: cannot read {path} ({error.strerror or error})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def collection_files(collection, suffixes):
    """``iter_members`` of the collection; a missing folder or a damaged archive is a UserError naming IMAGES."""
    with blame("IMAGES"):
        yield from iter_members(collection, suffixes)


def add_index_parser(subparsers):
    p = subparsers.add_parser("index", help="embed every image of a folder or zip archive (or every sentence of a text "
                                            "file) into a search index")
    p.add_argument("images", metavar="IMAGES", help="a folder (searched recursively) or a zip archive of images; for a "
                                                    "model of sentences, a UTF-8 text file of one sentence a line")
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
    text = model.vocabulary is not None  # a model of sentences indexes the lines of a text file
    unit = "sentences" if text else "images"
    items = "sentences" if text else \
        f"{preset.input_size[0]}x{preset.input_size[1]} images{', inverted' if invert else ''}"
    print(f"indexing {relative_to_here(collection)} with {args.checkpoint} ({config.preset} preset: {items}, "
          f"{preset.embedding_size}-d embeddings)", flush=True)
    if text:
        embeddings, names, skipped = embed_sentences(model, args.images, args.batch, already)
    else:
        embeddings, names, skipped = embed_collection(model, args.images, preset.input_size, invert, args.batch,
                                                      already, progress=not args.quiet)
    if skipped:
        print(f"skipped {len(skipped)} unreadable file{'s' * (len(skipped) > 1)}:", file=sys.stderr)
        for line in skipped:
            print(f"  {line}", file=sys.stderr)
    if not names:
        if already:
            print(f"nothing to add: {out} already holds the {len(already)} {unit} of {collection}")
            return 0
        wanted = "sentences" if text else \
            f"readable images (files ending in {', '.join(IMAGE_SUFFIXES)})"
        raise UserError(f"IMAGES: {args.images} holds no {wanted}")

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
    print(f"indexed {added} {unit} ({len(names)} in all) into {out}: {describe_method(params)}")
    return 0


# ----- searching --------------------------------------------------------------------------------------
def add_search_parser(subparsers):
    p = subparsers.add_parser("search", help="the images (or sentences) of an index nearest to queries, and a contact "
                                             "sheet")
    p.add_argument("index", metavar="INDEX", help="an index written by `tinysiam index`")
    p.add_argument("queries", metavar="QUERY", nargs="+", help="query image files (resized like the indexed ones); "
                                                              "for an index of sentences, query sentences")
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
    text = model.vocabulary is not None
    queries = args.queries if text else \
        read_image_files(args.queries, get_preset(config.preset).input_size, index.meta["invert"], "QUERY")
    exact = args.exact or approximate is None
    try:
        indices, scores = search(index, model, model.embed(queries), args.k, exact, args.nprobe, args.ef_search,
                                 args.device)
    except ImportError as error:
        raise UserError(f"{args.index} holds an approximate index: {error}; or pass --exact") from None
    how = "exact search" if exact else f"approximate search, FAISS {approximate['method'].upper()}"
    kind = index.meta["checkpoint"]["score"]
    value_name, values = ("distance", -scores) if kind.startswith("neg_") else \
        ({"koch_logit": "logit", "relatedness": "relatedness"}.get(kind, "score"), scores)
    for query, row, row_values in zip(args.queries, indices, values):
        print(f"{query}: the {args.k} nearest of {len(index)} {'sentences' if text else 'images'} ({how})")
        print(f"  rank  {value_name:>8}  {'sentence' if text else 'file'}")
        for rank, (i, value) in enumerate(zip(row, row_values), start=1):
            if i >= 0:  # FAISS marks neighbours it did not reach with -1
                print(f"  {rank:4d}  {value:8.4f}  {index.names[i] if text else relative_to_here(index.location(i))}")
        if (row < 0).any():
            print(f"  (the approximate index reached only {int((row >= 0).sum())}: raise --nprobe or --ef-search, "
                  "or pass --exact)")
    if not (args.no_sheet or text):  # a contact sheet shows images
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
