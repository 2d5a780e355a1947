"""Which Integrated Gradients baseline to default to: each measured on a finished
synthetic_cxr run, by localization against the known lesion masks and by the two
randomization checks (Adebayo et al. 2018), with Grad-CAM and Grad-CAM++ beside them.

    python benchmarks/ig_baselines.py --run_dir runs/<a finished synthetic_cxr run>

The run's own model and test split; the same images and draws for every baseline:
localization on the (up to) 64 test lesions the Explainer uses, the randomization checks
on 32 seeded test images over 3 draws (cascading, and data randomization with one
true-label and 3 permuted-label models of 256 training images, 10 epochs, shared by all
methods), the verdict on the worst draw. Prints one table and writes
<run_dir>/ig_baselines.json.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from benchmarks.machine import cpu_name  # noqa: E402
from components.artifacts import write_json  # noqa: E402
from components.explain.gradcam import grad_cam, grad_cam_plus_plus  # noqa: E402
from components.explain.integrated_gradients import BASELINES, integrated_gradients  # noqa: E402
from components.explain.localization import load_masks, localization_report  # noqa: E402
from components.explain.sanity_checks import data_randomization, sanity_report  # noqa: E402
from components.pneumonia.explainer import case_images, localization_cases  # noqa: E402
from components.saved_splits import load_spec, split_sample  # noqa: E402
from components.trained_model import load_trained_model  # noqa: E402


def methods(seed: int) -> dict:
    ig = {
        f"ig_{b}": functools.partial(
            integrated_gradients, baseline=b, **({"seed": seed} if b == "uniform" else {})
        )
        for b in BASELINES
    }
    return {"gradcam": grad_cam, "gradcam_plus_plus": grad_cam_plus_plus, **ig}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sanity_images", type=int, default=32)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--data_randomization_images", type=int, default=256)
    parser.add_argument("--data_randomization_epochs", type=int, default=10)
    args = parser.parse_args()
    examples, transform = args.run_dir / "example_gen", args.run_dir / "transform"
    model = load_trained_model(args.run_dir / "trainer")
    compared = methods(args.seed)
    start = time.perf_counter()

    lesions = localization_cases(examples, transform, 64)
    images = case_images(examples, transform, lesions["path"].tolist())
    masks = load_masks(lesions["mask_path"].tolist(), load_spec(transform)["image_size"])
    localization = {
        name: localization_report(m(model, images), masks) for name, m in compared.items()
    }

    sanity_images, _ = split_sample(transform, "test", args.sanity_images, args.seed)
    train_images, train_labels = split_sample(
        transform, "train", args.data_randomization_images, args.seed
    )
    randomized_labels = data_randomization(
        lambda: keras.models.clone_model(model),
        train_images,
        train_labels,
        sanity_images,
        compared,
        epochs=args.data_randomization_epochs,
        seed=args.seed,
        draws=args.draws,
    )
    sanity = sanity_report(
        model,
        sanity_images,
        compared,
        seed=args.seed,
        draws=args.draws,
        data_randomization_results=randomized_labels,
    )
    seconds = time.perf_counter() - start

    header = (
        "| method | pointing game | no tolerance | mass inside | cascading Spearman "
        "[draws] | data randomization Spearman [draws] | passes both |"
    )
    rows = [header, "|---|---|---|---|---|---|---|"]
    for name in compared:
        loc, cas = localization[name], sanity["summary"][name]
        dat = randomized_labels["methods"][name]
        lo, hi = cas["final_spearman_interval"]
        dlo, dhi = dat["spearman_interval"]
        rows.append(
            f"| {name} | {loc['pointing_game']:.3f} | {loc['pointing_game_no_tolerance']:.3f} "
            f"| {loc['mean_mass_inside']:.3f} | {cas['final_spearman']:.3f} [{lo:.3f}, {hi:.3f}] "
            f"| {dat['spearman']:.3f} [{dlo:.3f}, {dhi:.3f}] "
            f"| {'yes' if cas['passes'] and dat['passes'] else 'no'} |"
        )
    chance = next(iter(localization.values()))["chance"]
    random_map = chance["random_map"]
    rows.append(
        f"| random map | {random_map['pointing_game']:.3f} | "
        f"{random_map['pointing_game_no_tolerance']:.3f} | {random_map['mean_mass_inside']:.3f} "
        "| | | |"
    )
    print("\n".join(rows))
    tolerance = next(iter(localization.values()))["tolerance_px"]
    print(
        f"{len(images)} lesion images, tolerance {tolerance:.1f} px, lesions "
        f"{chance['mask_area_fraction']:.3f} of the image; sanity: {len(sanity_images)} "
        f"images, {args.draws} draws, pass bar {sanity['pass_threshold_spearman']} on the "
        f"worst draw; true/permuted-label train accuracy "
        f"{randomized_labels['true_label_train_accuracy']:.2f}/"
        f"{randomized_labels['random_label_train_accuracy']:.2f}; {seconds:.0f} s on "
        f"{cpu_name()}"
    )
    write_json(
        args.run_dir / "ig_baselines.json",
        {
            "localization": {
                k: {x: v[x] for x in v if x != "per_image"} for k, v in localization.items()
            },
            "sanity": sanity,
            "seconds": seconds,
            "cpu": cpu_name(),
        },
    )


if __name__ == "__main__":
    main()
