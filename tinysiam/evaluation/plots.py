"""Figures written as PNG files (matplotlib, the ``plot`` extra). Each function returns the path.

Files are written to a temporary name and renamed, so a failed plot never
leaves a half-written image behind.
"""
import numpy as np

from ..engine.backend import to_numpy
from ..serialization import atomic_open


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install tinysiam[plot]") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    try:
        with atomic_open(path, "xb") as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    return path


def plot_history(history, path):
    """Loss per epoch, and on a second panel every ``*accuracy*`` column."""
    if not history:
        raise ValueError("history is empty: nothing to plot")
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    accuracy_keys = [k for k in history[0] if "accuracy" in k]
    fig, axes = plt.subplots(1, 2 if accuracy_keys else 1, figsize=(10 if accuracy_keys else 5, 3.5), squeeze=False)
    for key in (k for k in history[0] if k.endswith("loss")):
        axes[0, 0].plot(epochs, [row[key] for row in history], marker="o", label=key)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0, 0].legend()
    for key in accuracy_keys:
        axes[0, 1].plot(epochs, [row[key] for row in history], marker="o", label=key)
        axes[0, 1].set(xlabel="epoch", ylabel="accuracy", title="validation", ylim=(0, 1))
        axes[0, 1].legend()
    return _save(fig, path)


def plot_roc(fpr, tpr, path, auc=None, eer=None):
    """ROC curve with the chance diagonal; the equal-error point marked when ``eer`` is given."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    label = "ROC" if auc is None else f"ROC (AUC {auc:.3f})"
    ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    if eer is not None:
        ax.plot([eer], [1 - eer], "ro", label=f"EER {eer:.2%}")
    ax.set(xlabel="false accept rate", ylabel="true accept rate", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(fig, path)


def pca_2d(points):
    """Project (N, D) points on their two principal axes (centre, then the top-2 right singular vectors)."""
    points = to_numpy(points).astype(np.float64).reshape(len(points), -1)
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def plot_embeddings_2d(embeddings, labels, path, class_names=None):
    """A PCA scatter of the embeddings coloured by class (legend for up to 20 classes)."""
    plt = _pyplot()
    xy, labels = pca_2d(embeddings), to_numpy(labels)
    if len(xy) != len(labels):
        raise ValueError(f"{len(xy)} embeddings but {len(labels)} labels")
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    classes = np.unique(labels)
    colours = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    for i, c in enumerate(classes):
        name = class_names[c] if class_names is not None else str(c)
        ax.scatter(*xy[labels == c].T, s=10, color=colours(i % colours.N), label=name)
    if len(classes) <= 20:
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set(title="embeddings (PCA)", xlabel="PC 1", ylabel="PC 2")
    return _save(fig, path)


def plot_one_shot(query, supports, chosen, true, path):
    """The query and its support set; the chosen match framed green (right) or red (wrong), the true one marked."""
    plt = _pyplot()
    supports = to_numpy(supports)
    n = len(supports)
    if not (0 <= chosen < n and 0 <= true < n):
        raise ValueError(f"chosen={chosen} and true={true} must index the {n} support images")
    columns = min(n, 10)
    rows = 1 + int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(to_numpy(query).squeeze(), cmap="gray_r")
    axes[0, 0].set_title("query", fontsize=8)
    for i, image in enumerate(supports):
        ax = axes[1 + i // columns, i % columns]
        ax.imshow(image.squeeze(), cmap="gray_r")
        if i == chosen:
            colour = "green" if chosen == true else "red"
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set(color=colour, linewidth=3)
            ax.set_title("chosen", fontsize=8, color=colour)
        elif i == true:
            ax.set_title("true", fontsize=8)
    return _save(fig, path)


def plot_contact_sheet(queries, query_titles, neighbours, captions, path):
    """One row per query: the query (framed), then its neighbours in rank order, each under its caption.

    Images are (H, W) grey or (H, W, 3) RGB arrays; None leaves a blank cell
    marked "not readable" (a file that has moved since it was indexed).
    """
    plt = _pyplot()
    if not (len(queries) == len(query_titles) == len(neighbours) == len(captions)) or not queries:
        raise ValueError(f"need one title, neighbour row and caption row per query; got {len(queries)} queries, "
                         f"{len(query_titles)} titles, {len(neighbours)} and {len(captions)} rows")
    columns = 1 + max(len(row) for row in neighbours)
    fig, axes = plt.subplots(len(queries), columns, figsize=(1.7 * columns, 2.0 * len(queries)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (query, title, row, row_captions) in enumerate(zip(queries, query_titles, neighbours, captions)):
        _show_cell(axes[r, 0], query, title)
        axes[r, 0].axis("on")  # the frame tells the query from its neighbours
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        for spine in axes[r, 0].spines.values():
            spine.set(color="tab:blue", linewidth=3)
        for c, (image, caption) in enumerate(zip(row, row_captions), start=1):
            _show_cell(axes[r, c], image, caption)
    return _save(fig, path)


def _show_cell(ax, image, caption):
    if image is None:
        ax.text(0.5, 0.5, "not readable", ha="center", va="center", fontsize=7, transform=ax.transAxes)
    else:
        ax.imshow(to_numpy(image), cmap="gray", vmin=0, vmax=255 if np.asarray(image).dtype == np.uint8 else 1)
    ax.set_title(caption, fontsize=7)


def plot_learning_curves(curves, path, ylabel="validation accuracy", references=None):
    """Validation accuracy against minutes of training, one line per run.

    ``curves`` maps a label to (minutes, values), the values measured at the end of each epoch;
    ``references`` maps a label to a level drawn as a dashed horizontal line.
    """
    if not curves:
        raise ValueError("curves is empty: nothing to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, (minutes, values) in curves.items():
        if len(minutes) != len(values):
            raise ValueError(f"{label}: {len(minutes)} times but {len(values)} values")
        ax.plot(minutes, values, marker="o", markersize=3, label=label)
    for i, (label, level) in enumerate((references or {}).items()):
        ax.axhline(level, color=f"C{len(curves) + i}", linestyle="--", linewidth=1, label=label)
    ax.set(xlabel="minutes of training (2 CPU cores)", ylabel=ylabel, xlim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
