"""The command line: `python -m jaxvq COMMAND [--flags]`, or `jaxvq COMMAND` once installed.

Each module here is one command: `define_flags()` defines its flags (only when
it runs, so importing a command defines none) and `main(argv)` does the work
through the library. `python train.py ...` is `jaxvq train ...`.
"""
COMMANDS = {
    "train": "train a model (or resume it): --config=configs/NAME.py --workdir=DIR",
    "encode": "save a trained VQ-VAE's code grids for a prior: --workdir=VQVAE_DIR",
    "sample": "new images from a trained prior: --workdir=PRIOR_DIR --output=samples.png",
    "export": "a trained run as jax.export functions, served with jax alone: --workdir=DIR "
              "--output=DIR",
    "bits": "the VQ-VAE's bound on the test NLL in bits/dim (--codes_only: the prior's "
            "bits per code): --workdir=PRIOR_DIR",
    "plot": "training curves of runs in one PNG: --workdir=DIR [--workdir=DIR2 ...]",
    "bench": "time a config's compiled train step (layers, formulations, peers, sampling)",
    "compare": "train a VQ-VAE config in several codebook variants, side by side",
    "features": "train the feature network of `quality`: --dataset=NAME --workdir=DIR",
    "photos": "a folder of real photo crops made offline from scikit-image's photos: "
              "--output=DIR",
    "quality": "FID, precision/recall, class accuracy, PSNR/SSIM of images: --images=SOURCE "
               "[--features=FEATURES_DIR]",
}
