"""EDA for the chest X-ray examples table: what the images are before a model sees them.

Reads ExampleGen's `examples.csv` (path, label, patient_id, split, pathogen) and writes:

- `class_balance.png`: images per split and class, and per split and pathogen;
- `image_sizes.png`: width x height (read from file headers, no pixels decoded) by split
  and class, and the aspect ratio distribution;
- `intensity.png`, `mean_images.png`: per-image mean and standard deviation of grey level
  by class, pooled grey-level histograms, and the mean image of each class (with their
  difference), from a seeded sample of at most `max_intensity_images` images decoded at
  reduced scale (JPEG draft mode), so thousands of radiographs take seconds;
- `samples_by_class.png`, `samples_by_pathogen.png`: seeded sample grids;
- `sizes.csv` (every image's header size), `intensity.csv` (the sampled images' statistics),
  `eda.json` (the numbers) and `eda.html` (one self-contained page, images embedded).

Every figure is also written as a TensorBoard image summary (tag = the PNG's stem).
Observations worth a reader's attention (class imbalance, resolution or colour mode that
differ by split or class) are listed under "notes": a model can learn such cues instead of
the lungs.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from components.artifacts import SPLITS, read_json, write_csv, write_json
from components.reporting import html_page
from components.reporting.figures import plot_split_counts, plt, save_figure
from datasets.nih_chestxray14.findings import NO_FINDING

KNOWN_COLORS = {
    "NORMAL": "tab:blue",
    "PNEUMONIA": "tab:red",
    "normal": "tab:blue",
    "bacteria": "tab:orange",
    "virus": "tab:purple",
    "unknown": "tab:gray",
}
SPLIT_MARKERS = {"train": "o", "val": "s", "test": "^"}
QUANTILES = {
    "min": 0.0,
    "p05": 0.05,
    "p25": 0.25,
    "median": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "max": 1.0,
}
INTENSITY_SIZE = 128  # images are decoded near this size and resized to it for statistics
THUMBNAIL_SIZE = 256  # sample grids decode at about this size


# ----------------------------------------------------------------------------- reading


def read_examples(examples: Path) -> pd.DataFrame:
    """ExampleGen's table; `examples` is its folder (runner input) or the CSV itself.

    A multi-label table's labels (combinations of findings: dozens on NIH data) are
    grouped as "No Finding" and "findings": per-combination plots would be unreadable,
    and the per-finding counts are in example_gen/stats.json."""
    csv = examples if examples.is_file() else examples / "examples.csv"
    frame = pd.read_csv(csv, keep_default_na=False, dtype={"pathogen": str, "patient_id": str})
    stats = csv.parent / "stats.json"
    if stats.is_file() and read_json(stats).get("task") == "multilabel":
        frame["label"] = frame["label"].where(frame["label"] == NO_FINDING, "findings")
    if "pathogen" not in frame.columns:
        frame["pathogen"] = ""
    frame["pathogen"] = frame["pathogen"].replace("", "unknown")
    return frame.reset_index(drop=True)


def ordered(values: Iterable[str], order: Iterable[str] = ()) -> list[str]:
    """The distinct `values`, those named in `order` first and in that order, the rest sorted:
    splits as train, val, test and classes as NORMAL, PNEUMONIA in every table and plot."""
    values = set(values)
    first = [v for v in order if v in values]
    return first + sorted(values - set(first))


def color(name: str, index: int = 0) -> str:
    """The fixed colour of a known class or pathogen (`KNOWN_COLORS`), so a class has one colour in
    every figure; else matplotlib's cycle colour at `index`."""
    return KNOWN_COLORS.get(name, f"C{index % 10}")


def image_header(path: str) -> dict[str, Any]:
    """Width, height, mode and format from the file header only (PIL decodes lazily)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            return {
                "width": width,
                "height": height,
                "mode": image.mode,
                "format": image.format or "",
                "error": "",
            }
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return {
            "width": np.nan,
            "height": np.nan,
            "mode": "",
            "format": "",
            "error": f"{type(error).__name__}: {error}",
        }


def read_sizes(frame: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
    """Every image's header (width, height, mode, format, or the error reading it) beside its split,
    label and pathogen, plus the aspect ratio (width / height); no pixels decoded."""
    paths = tqdm(
        frame["path"], desc="reading image headers", unit="file", disable=not progress, leave=False
    )
    headers = pd.DataFrame([image_header(p) for p in paths], index=frame.index)
    sizes = pd.concat([frame[["path", "split", "label", "pathogen"]], headers], axis=1)
    sizes["aspect"] = sizes["width"] / sizes["height"]
    return sizes


def decode_small(path: str, size: int) -> np.ndarray:
    """Grey levels (size, size) uint8; JPEGs decode at 1/2..1/8 scale via draft mode."""
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("L", (size, size))
        grey = image.convert("L")
        return np.asarray(grey.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def intensity_sample(frame: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most `cap` rows, an equal share from each (split, class) group, seeded.

    Equal shares keep the small groups (a 16-image val folder) visible next to thousands
    of training images; a group smaller than its share gives all its rows.
    """
    groups = frame.groupby(["split", "label"], sort=True)
    share = max(1, cap // max(1, groups.ngroups))
    picked = [group.sample(n=min(share, len(group)), random_state=seed) for _, group in groups]
    return pd.concat(picked).sort_index() if picked else frame.iloc[:0]


def read_intensities(
    sample: pd.DataFrame, size: int = INTENSITY_SIZE, progress: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-image mean/std of grey level (0-255) and the stacked (n, size, size) images."""
    pixels = np.zeros((len(sample), size, size), dtype=np.uint8)
    ok = np.zeros(len(sample), dtype=bool)
    paths = tqdm(
        sample["path"], desc="reading intensities", unit="image", disable=not progress, leave=False
    )
    for i, path in enumerate(paths):
        try:
            pixels[i] = decode_small(path, size)
            ok[i] = True
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    pixels = pixels[ok]
    flat = pixels.reshape(len(pixels), -1).astype(np.float32)
    stats = sample.loc[ok, ["path", "split", "label", "pathogen"]].copy()
    stats["mean"] = flat.mean(axis=1) if len(flat) else []
    stats["std"] = flat.std(axis=1) if len(flat) else []
    return stats.reset_index(drop=True), pixels


# ----------------------------------------------------------------------------- numbers


def crosstab(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Images per split (rows: train, val, test) and value of `column` (label or pathogen), zeros
    filled in."""
    table = pd.crosstab(frame["split"], frame[column])
    return (
        table.reindex(
            index=ordered(table.index, SPLITS), columns=ordered(table.columns, KNOWN_COLORS)
        )
        .fillna(0)
        .astype(int)
    )


def nested_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """A `crosstab` as eda.json holds it: {split: {value: count}}, zero counts left out."""
    return {
        str(split): {str(k): int(v) for k, v in row.items() if v} for split, row in table.iterrows()
    }


def quantiles(values: pd.Series) -> dict[str, float]:
    """The `QUANTILES` (min, 5th to 95th percentiles, max) and the mean of the non-missing values,
    rounded to 4 places; empty when there are none."""
    values = values.dropna().astype(float)
    if values.empty:
        return {}
    out = {name: round(float(values.quantile(q)), 4) for name, q in QUANTILES.items()}
    out["mean"] = round(float(values.mean()), 4)
    return out


def size_summary(sizes: pd.DataFrame) -> dict[str, Any]:
    """eda.json's `image_sizes`: per split and class the width, height and aspect quantiles and the
    three most common sizes; colour modes per split, file formats, and the unreadable files with
    their errors."""
    readable = sizes[sizes["error"] == ""]
    by_group: dict[str, dict[str, Any]] = {}
    for split in ordered(readable["split"], SPLITS):
        in_split = readable[readable["split"] == split]
        by_group[split] = {}
        for label in ordered(in_split["label"], KNOWN_COLORS):
            group = in_split[in_split["label"] == label]
            common = group.groupby(["width", "height"]).size().sort_values(ascending=False).head(3)
            by_group[split][label] = {
                "n": int(len(group)),
                "width": quantiles(group["width"]),
                "height": quantiles(group["height"]),
                "aspect": quantiles(group["aspect"]),
                "distinct_sizes": int(len(group.groupby(["width", "height"]))),
                "most_common": [
                    {"width": int(w), "height": int(h), "n": int(n)} for (w, h), n in common.items()
                ],
            }
    modes = {
        str(split): {str(k): int(v) for k, v in group["mode"].value_counts().items()}
        for split, group in readable.groupby("split")
    }
    formats = {str(k): int(v) for k, v in readable["format"].value_counts().items()}
    unreadable = sizes.loc[sizes["error"] != "", ["path", "error"]].to_dict(orient="records")
    return {
        "by_split_class": by_group,
        "modes_by_split": modes,
        "formats": formats,
        "unreadable_count": len(unreadable),
        "unreadable": unreadable[:20],
    }


def intensity_summary(stats: pd.DataFrame, cap: int, seed: int, size: int) -> dict[str, Any]:
    """eda.json's `intensity`: mean and standard deviation of grey level (0-255) per class and per
    split and class, over the `stats` of the sampled images, with the sample's cap, seed and
    decoding size recorded."""

    def describe(group: pd.DataFrame) -> dict[str, Any]:
        return {
            "n": int(len(group)),
            "mean_intensity": round(float(group["mean"].mean()), 3),
            "mean_intensity_sd": round(float(group["mean"].std(ddof=0)), 3),
            "std_intensity": round(float(group["std"].mean()), 3),
            "mean_quantiles": quantiles(group["mean"]),
            "std_quantiles": quantiles(group["std"]),
        }

    return {
        "n_images": int(len(stats)),
        "max_images": cap,
        "seed": seed,
        "decoded_at": f"{size}x{size} grey (JPEG draft mode, then bilinear resize)",
        "scale": "grey levels 0-255",
        "by_class": {
            label: describe(stats[stats["label"] == label])
            for label in ordered(stats["label"], KNOWN_COLORS)
        },
        "by_split_class": {
            split: {
                label: describe(group[group["label"] == label])
                for label in ordered(group["label"], KNOWN_COLORS)
            }
            for split in ordered(stats["split"], SPLITS)
            for group in [stats[stats["split"] == split]]
        },
    }


def observations(
    counts: pd.DataFrame, sizes: pd.DataFrame, size_numbers: dict[str, Any], stats: pd.DataFrame
) -> list[str]:
    """Plain-language flags for what could mislead training or evaluation."""
    notes = []
    for split, row in counts.iterrows():
        present = row[row > 0]
        if len(present) >= 2 and present.max() / present.min() >= 1.5:
            notes.append(
                f"{split}: classes are imbalanced ({', '.join(f'{k} {v}' for k, v in present.items())}; "
                f"ratio {present.max() / present.min():.1f}:1)"
            )
    readable = sizes[sizes["error"] == ""]
    longer = np.maximum(readable["width"], readable["height"])
    if len(longer) and longer.min() > 0 and longer.max() / longer.min() >= 1.5:
        groups = longer.groupby([readable["split"], readable["label"]])
        listed = "; ".join(
            f"{s}/{c} {g.median():.0f} ({g.min():.0f}-{g.max():.0f})" for (s, c), g in groups
        )
        notes.append(
            "image resolution varies (longer side in px, median (min-max): "
            f"{listed}); resizing hides it from the model only partly (sharpness, "
            "noise and borders remain), so a split or class with other sizes can "
            "be told apart by acquisition rather than anatomy"
        )
    modes = {split: sorted(m) for split, m in size_numbers["modes_by_split"].items()}
    if len({tuple(m) for m in modes.values()}) > 1 or any(len(m) > 1 for m in modes.values()):
        notes.append(
            f"colour modes differ ({json.dumps(modes)}); the Transform converts every "
            "image to one grey channel"
        )
    if size_numbers["unreadable_count"]:
        notes.append(f"{size_numbers['unreadable_count']} image(s) could not be opened")
    labels = ordered(stats["label"], KNOWN_COLORS)
    if len(labels) == 2:
        first, second = (stats[stats["label"] == label] for label in labels)
        for column, what in (("mean", "mean brightness"), ("std", "contrast (within-image sd)")):
            pooled = np.sqrt((first[column].var(ddof=0) + second[column].var(ddof=0)) / 2)
            if pooled > 0:
                effect = (second[column].mean() - first[column].mean()) / pooled
                if abs(effect) >= 0.5:
                    notes.append(
                        f"{what} differs by class ({labels[0]} {first[column].mean():.1f}, "
                        f"{labels[1]} {second[column].mean():.1f}; standardized "
                        f"difference {effect:+.2f}): it alone carries some label signal"
                    )
    return notes


# ----------------------------------------------------------------------------- figures


def plot_class_and_pathogen_counts(counts: pd.DataFrame, pathogens: pd.DataFrame) -> plt.Figure:
    """class_balance.png: bars of images per split, by class (left) and by pathogen (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, table, title in (
        (axes[0], counts, "Images per split and class"),
        (axes[1], pathogens, "Images per split and pathogen"),
    ):
        plot_split_counts(
            ax,
            table,
            title,
            "images",
            bar_labels=True,
            colors=[color(c, i) for i, c in enumerate(table.columns)],
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_image_sizes(sizes: pd.DataFrame) -> plt.Figure:
    """image_sizes.png: width against height per split and class, the longer side by split and
    class, and the aspect ratio by class, all from the file headers `read_sizes` read."""
    readable = sizes[sizes["error"] == ""]
    labels = ordered(readable["label"], KNOWN_COLORS)
    splits = ordered(readable["split"], SPLITS)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    for i, label in enumerate(labels):
        for split in splits:
            group = readable[(readable["label"] == label) & (readable["split"] == split)]
            if len(group):
                ax.scatter(
                    group["width"],
                    group["height"],
                    s=12,
                    alpha=0.4,
                    color=color(label, i),
                    marker=SPLIT_MARKERS.get(split, "x"),
                    label=f"{split} / {label}",
                )
    ax.set(xlabel="width (px)", ylabel="height (px)", title="Image size (from file headers)")
    ax.legend(fontsize=7)
    ax = axes[1]
    names, data, colors = [], [], []
    for split in splits:
        for i, label in enumerate(labels):
            group = readable[(readable["label"] == label) & (readable["split"] == split)]
            if len(group):
                names.append(f"{split}\n{label}")
                data.append(np.maximum(group["width"], group["height"]).to_numpy())
                colors.append(color(label, i))
    boxes = ax.boxplot(data, patch_artist=True, widths=0.6)
    for patch, face in zip(boxes["boxes"], colors):
        patch.set(facecolor=face, alpha=0.5)
    ax.set_xticks(range(1, len(names) + 1), names, fontsize=7)
    ax.set(ylabel="longer side (px)", title="Resolution by split and class")
    ax = axes[2]
    aspects = readable["aspect"].dropna()
    bins = np.histogram_bin_edges(aspects, bins=30) if aspects.nunique() > 1 else 10
    for i, label in enumerate(labels):
        ax.hist(
            readable.loc[readable["label"] == label, "aspect"],
            bins=bins,
            alpha=0.5,
            color=color(label, i),
            label=label,
        )
    ax.set(xlabel="aspect ratio (width / height)", ylabel="images", title="Aspect ratio by class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_intensity(stats: pd.DataFrame, pixels: np.ndarray) -> plt.Figure:
    """intensity.png: histograms of per-image mean and standard deviation of grey level by class,
    their scatter by split, and the pooled grey-level histogram of the sampled `pixels` (n, size,
    size)."""
    labels = ordered(stats["label"], KNOWN_COLORS)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, column, title in (
        (axes[0, 0], "mean", "Per-image mean grey level"),
        (axes[0, 1], "std", "Per-image grey-level standard deviation"),
    ):
        bins = np.histogram_bin_edges(stats[column], bins=30) if len(stats) else 10
        for i, label in enumerate(labels):
            ax.hist(
                stats.loc[stats["label"] == label, column],
                bins=bins,
                alpha=0.5,
                density=True,
                color=color(label, i),
                label=label,
            )
        ax.set(title=title, xlabel="grey level (0-255)", ylabel="density")
        ax.legend(fontsize=8)
    ax = axes[1, 0]
    for i, label in enumerate(labels):
        for split in ordered(stats["split"], SPLITS):
            group = stats[(stats["label"] == label) & (stats["split"] == split)]
            if len(group):
                ax.scatter(
                    group["mean"],
                    group["std"],
                    s=10,
                    alpha=0.5,
                    color=color(label, i),
                    marker=SPLIT_MARKERS.get(split, "x"),
                    label=f"{split} / {label}",
                )
    ax.set(xlabel="mean grey level", ylabel="standard deviation", title="Mean vs spread per image")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    label_array = stats["label"].to_numpy()
    for i, label in enumerate(labels):
        chosen = pixels[label_array == label]
        histogram = np.bincount(chosen.ravel(), minlength=256).astype(float)
        ax.plot(
            np.arange(256),
            histogram / max(histogram.sum(), 1.0),
            color=color(label, i),
            label=label,
        )
    ax.set(xlabel="grey level", ylabel="share of pixels", title="Pooled grey-level histogram")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Intensity statistics ({len(stats)} sampled images, decoded at "
        f"{pixels.shape[1] if pixels.ndim == 3 else INTENSITY_SIZE} px)"
    )
    fig.tight_layout()
    return fig


def plot_mean_images(stats: pd.DataFrame, pixels: np.ndarray) -> plt.Figure:
    """mean_images.png: the mean sampled image of each class and, with two classes, their
    difference: structure that differs there (text, borders, devices) is a cue a model can learn
    instead of the lungs."""
    labels = ordered(stats["label"], KNOWN_COLORS)
    label_array = stats["label"].to_numpy()
    means = {
        label: pixels[label_array == label].mean(axis=0)
        for label in labels
        if (label_array == label).any()
    }
    panels = len(means) + (1 if len(means) == 2 else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(4 * max(panels, 1), 4.3), squeeze=False)
    for ax, (label, image) in zip(axes[0], means.items()):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"mean {label} image (n={(label_array == label).sum()})")
    if len(means) == 2:
        (a, first), (b, second) = means.items()
        difference = second - first
        limit = max(float(np.abs(difference).max()), 1.0)
        shown = axes[0, -1].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
        axes[0, -1].set_title(f"{b} - {a}")
        fig.colorbar(shown, ax=axes[0, -1], shrink=0.8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("Mean images (resized to a square; structure here is shared by the class)")
    fig.tight_layout()
    return fig


def plot_sample_grid(
    frame: pd.DataFrame, column: str, per_group: int, seed: int, title: str
) -> plt.Figure:
    """A grid of `per_group` seeded thumbnails per value of `column` (one row each), captioned with
    split and original size; an unreadable file is captioned as such, not raised."""
    groups = ordered(frame[column], KNOWN_COLORS)
    columns = max(1, per_group)
    fig, axes = plt.subplots(
        len(groups), columns, figsize=(2.1 * columns, 2.4 * len(groups)), squeeze=False
    )
    for row, group_name in enumerate(groups):
        group = frame[frame[column] == group_name]
        picked = group.sample(n=min(per_group, len(group)), random_state=seed)
        for col, ax in enumerate(axes[row]):
            ax.axis("off")
            if col >= len(picked):
                continue
            record = picked.iloc[col]
            try:
                with Image.open(record["path"]) as image:
                    size = image.size
                    if image.format == "JPEG":
                        image.draft("L", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                    grey = image.convert("L")
                    grey.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                    ax.imshow(np.asarray(grey), cmap="gray", vmin=0, vmax=255)
                caption = f"{record['split']} {size[0]}x{size[1]}"
            except (OSError, ValueError, Image.DecompressionBombError):
                caption = "unreadable"
            ax.set_title(caption, fontsize=7)
        axes[row, 0].text(
            -0.08,
            0.5,
            f"{group_name}\n(n={len(group)})",
            rotation=90,
            ha="right",
            va="center",
            transform=axes[row, 0].transAxes,
            fontsize=9,
        )
    fig.suptitle(f"{title} (seed {seed})")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- page


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(border=0, escape=True)


def size_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The eda.html table of image sizes per split and class (min / median / max of width and
    height, median aspect, distinct and most common sizes), from `size_summary`'s output."""
    rows = []
    for split, labels in summary["by_split_class"].items():
        for label, group in labels.items():
            if not group["width"]:
                continue
            common = group["most_common"][0] if group["most_common"] else {}
            rows.append(
                {
                    "split": split,
                    "class": label,
                    "n": group["n"],
                    "width (min / median / max)": "{min:.0f} / {median:.0f} / {max:.0f}".format(
                        **group["width"]
                    ),
                    "height (min / median / max)": "{min:.0f} / {median:.0f} / {max:.0f}".format(
                        **group["height"]
                    ),
                    "aspect median": f"{group['aspect']['median']:.2f}",
                    "distinct sizes": group["distinct_sizes"],
                    "most common": f"{common.get('width')}x{common.get('height')} ({common.get('n')})",
                }
            )
    return pd.DataFrame(rows).set_index(["split", "class"]) if rows else pd.DataFrame()


def intensity_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The eda.html table of grey-level statistics per split and class, then per class over all
    splits, from `intensity_summary`'s output."""
    rows = [
        {
            "split": split,
            "class": label,
            "n": g["n"],
            "mean grey level": g["mean_intensity"],
            "sd of image means": g["mean_intensity_sd"],
            "mean within-image sd": g["std_intensity"],
        }
        for split, labels in summary["by_split_class"].items()
        for label, g in labels.items()
    ]
    rows += [
        {
            "split": "all",
            "class": label,
            "n": g["n"],
            "mean grey level": g["mean_intensity"],
            "sd of image means": g["mean_intensity_sd"],
            "mean within-image sd": g["std_intensity"],
        }
        for label, g in summary["by_class"].items()
    ]
    return pd.DataFrame(rows).set_index(["split", "class"]) if rows else pd.DataFrame()


def write_page(
    path: Path,
    result: dict[str, Any],
    counts: pd.DataFrame,
    pathogens: pd.DataFrame,
    pictures: list[Path],
) -> None:
    """eda.html: the notes, the class-balance, size and intensity tables, the figures (embedded) and
    eda.json's numbers on one self-contained page."""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result["notes"]) or "<li>none</li>"
    intro = (
        f"<p>{result['n_examples']} images in the examples table. Sizes are read from every "
        "file's header; intensity statistics use a seeded sample of "
        f"{result['intensity']['n_images']} images (at most "
        f"{result['intensity']['max_images']}, equal shares per split and class).</p>"
    )
    html_page.write_report(
        path,
        "Chest X-ray data: exploratory analysis",
        [
            intro,
            html_page.section("Notes", f"<ul>{notes}</ul>"),
            html_page.section("Class balance", _table(counts), _table(pathogens)),
            html_page.section("Image sizes", _table(size_table(result["image_sizes"]))),
            html_page.section("Intensity", _table(intensity_table(result["intensity"]))),
            html_page.section(
                "Figures", "".join(html_page.image(p, p.stem.replace("_", " ")) for p in pictures)
            ),
            html_page.section(
                "Numbers (eda.json)", html_page.preformatted(json.dumps(result, indent=1))
            ),
        ],
    )


# ----------------------------------------------------------------------------- component


def run(
    out_dir: Path,
    *,
    examples: Path,
    sample_per_group: int = 6,
    seed: int = 42,
    max_intensity_images: int = 600,
    progress: bool = False,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The EDA component: figures, eda.json and eda.html for ExampleGen's table."""
    out_dir = Path(out_dir)
    frame = read_examples(Path(examples))
    counts = crosstab(frame, "label")
    pathogens = crosstab(frame, "pathogen")
    sizes = read_sizes(frame, progress)
    sample = intensity_sample(frame, max_intensity_images, seed)
    stats, pixels = read_intensities(sample, progress=progress)
    write_csv(out_dir / "sizes.csv", sizes)
    write_csv(out_dir / "intensity.csv", stats)

    figures = {
        "class_balance": plot_class_and_pathogen_counts(counts, pathogens),
        "image_sizes": plot_image_sizes(sizes),
        "intensity": plot_intensity(stats, pixels),
        "mean_images": plot_mean_images(stats, pixels),
        "samples_by_class": plot_sample_grid(
            frame, "label", sample_per_group, seed, "Random images per class"
        ),
        "samples_by_pathogen": plot_sample_grid(
            frame, "pathogen", sample_per_group, seed, "Random images per pathogen"
        ),
    }
    pictures = [
        save_figure(fig, out_dir / f"{name}.png", tensorboard_dir, name)
        for name, fig in figures.items()
    ]

    size_numbers = size_summary(sizes)
    intensity_numbers = intensity_summary(stats, max_intensity_images, seed, INTENSITY_SIZE)
    result: dict[str, Any] = {
        "n_examples": int(len(frame)),
        "counts": nested_counts(counts),
        "pathogens": nested_counts(pathogens),
        "image_sizes": size_numbers,
        "intensity": intensity_numbers,
        "notes": observations(counts, sizes, size_numbers, stats),
        "figures": [p.name for p in pictures],
        "params": {
            "sample_per_group": sample_per_group,
            "seed": seed,
            "max_intensity_images": max_intensity_images,
        },
    }
    write_json(out_dir / "eda.json", result)
    write_page(out_dir / "eda.html", result, counts, pathogens, pictures)
    return {
        "n_examples": result["n_examples"],
        "counts": result["counts"],
        "intensity_images": intensity_numbers["n_images"],
        "figures": result["figures"],
        "notes": len(result["notes"]),
        "report": "eda.html",
    }
