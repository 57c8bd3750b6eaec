"""Weight maps for a 2D image and an anisotropic 3D volume, saved next to their labels.

    python examples/weight_map.py --out example_out
    python examples/weight_map.py --plot            # also a PNG (needs matplotlib: pip install .[plot])
"""

import argparse
from pathlib import Path

import numpy as np

from unetweights import border_cutoff, nearest_two_distances, separate_touching, unet_weight_map
from unetweights.synthetic import touching_nuclei


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="example_out")
    parser.add_argument("--plot", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 2D: the paper's setting (w0 = 10, sigma = 5 px), after carving gaps between touching cells.
    labels = separate_touching(touching_nuclei((256, 256), 40, radius=18, seed=3))
    weights = unet_weight_map(labels, w0=10.0, sigma=5.0)
    np.save(out / "labels_2d.npy", labels)
    np.save(out / "weights_2d.npy", weights)
    print(f"2D: {labels.max()} objects, weights {weights.min():.2f}..{weights.max():.2f}")

    # 3D with voxels twice as deep as wide: sigma and distances are in the same physical units.
    spacing = (2.0, 1.0, 1.0)
    volume = touching_nuclei((24, 96, 96), 30, radius=12, spacing=spacing, seed=4)
    weights_3d = unet_weight_map(volume, sigma=4.0, spacing=spacing, class_weights={0: 1.0, 1: 2.0})
    d1, d2 = nearest_two_distances(volume, spacing=spacing, max_distance=border_cutoff(sigma=4.0))
    np.save(out / "weights_3d.npy", weights_3d)
    print(f"3D: {volume.max()} objects, weights {weights_3d.min():.2f}..{weights_3d.max():.2f}, "
          f"{np.isfinite(d2).mean():.0%} of voxels have a second object within the cutoff")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
        axes[0].imshow(labels, cmap="nipy_spectral", interpolation="nearest")
        axes[0].set_title("instances (gaps carved)")
        shown = axes[1].imshow(weights, cmap="magma")
        axes[1].set_title("U-Net weight map")
        fig.colorbar(shown, ax=axes[1], fraction=0.046)
        for ax in axes:
            ax.set_axis_off()
        fig.savefig(out / "weight_map.png", dpi=120, bbox_inches="tight")
        print(f"wrote {out / 'weight_map.png'}")


if __name__ == "__main__":
    main()
