"""The keys every run reads, whatever its model; `config.model` is the model's own section."""
from jaxvq.data.sources import CORRUPT_IMAGES
from jaxvq.schema import Field

DTYPES = ("float32", "bfloat16")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")

SHARED = {
    "dataset": Field("fashion_mnist", "mnist, fashion_mnist, binarized_mnist, cifar10 or any "
                     "TFDS name, folder:PATH, npz:PATH, or codes:VQVAE_WORKDIR (a prior's data)"),
    "data_dir": Field("", "TFDS data_dir; '' uses $TFDS_DATA_DIR or ~/tensorflow_datasets",
                      resumable=True),
    "image_size": Field(0, "images are resized to this square size (0: the dataset's own)",
                        minimum=0),
    "corrupt_images": Field("error", "an image folder's file that cannot be decoded: 'error' "
                            "stops with a line naming it; 'skip' reads the next readable image "
                            "of the split in its place (deterministic; counted in the train "
                            "rows as skipped_images)", choices=CORRUPT_IMAGES,
                            resumable=True),
    "data_workers": Field(0, "processes that read, decode and augment the training batches "
                          "(Grain's mp_prefetch); 0: threads of the training process",
                          minimum=0, resumable=True),
    "data_prefetch": Field(2, "training batches prepared ahead of the step, each on a thread "
                           "of its own (in each worker when data_workers > 0); 0: each batch "
                           "read when its step starts", minimum=0, resumable=True),
    "augment_flip": Field(False, "flip each training image left-right with probability 1/2, "
                          "drawn from (seed, step, row of the batch)"),
    "augment_crop_padding": Field(0, "pad each training image by this many pixels per side "
                                  "(reflecting its edges) and crop it back to its size at an "
                                  "offset drawn from (seed, step, row of the batch); 0: off",
                                  minimum=0),
    "batch_size": Field(128, "the global batch, split over every device", minimum=1),
    "eval_batch_size": Field(500, "test examples per evaluation batch", minimum=1,
                             resumable=True),
    "num_train_steps": Field(5000, "training steps in all", minimum=1, resumable=True),
    "learning_rate": Field(3e-4, "Adam's learning rate", above=0.0),
    "learning_rate_schedule": Field("constant", "constant, or cosine: decays to 0 over "
                                    "num_train_steps", choices=LEARNING_RATE_SCHEDULES),
    "seed": Field(0, "the one seed of every random draw and of the data order", minimum=0),
    "log_every_steps": Field(100, "a train row this often", minimum=1, resumable=True),
    "eval_every_steps": Field(1000, "an evaluation this often (and at the end)", minimum=1,
                              resumable=True),
    "checkpoint_every_steps": Field(1000, "a checkpoint this often (and at the end)", minimum=1,
                                    resumable=True),
    "keep_checkpoints": Field(2, "how many of the newest checkpoints are kept", minimum=1,
                              resumable=True),
    "num_eval_examples": Field(0, "test examples per evaluation (0: the whole test split)",
                               minimum=0, resumable=True),
    "num_image_grid": Field(64, "images in each PNG grid", minimum=1, resumable=True),
    "num_devices": Field(0, "devices of the data mesh (0: all)", minimum=0, resumable=True),
    "overwrite": Field(False, "True: a workdir holding a run of another config is cleared",
                       resumable=True),
    "dtype": Field("float32", "the nets' activations and convolutions: float32 or bfloat16 "
                   "(parameters, optimizer state and the latent math stay float32)",
                   choices=DTYPES),
    "quality_features": Field("", "a feature network's workdir (`jaxvq features`): the final "
                               "evaluation then writes a `fid` row (a prior's, VAE's or AE's "
                               "samples, a VQ-VAE's reconstructions; '': none)", resumable=True),
    "final_fid_images": Field(10000, "N of that row's images and real test images", minimum=2,
                               resumable=True),
}
