"""The flags of a prior's sampling options, shared by `jaxvq sample` and `jaxvq quality`."""
from absl import flags

from jaxvq.sampling import SAMPLE_OPTIONS

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_float("temperature", 1.0, "Softmax temperature of the prior's logits.")
  flags.DEFINE_integer("top_k", SAMPLE_OPTIONS["top_k"], "Draw among the k most likely codes "
                       "(0: all); autoregressive and masked transformer priors.")
  flags.DEFINE_float("top_p", SAMPLE_OPTIONS["top_p"], "Draw among the fewest most likely codes "
                     "whose probability reaches p (1: all).")
  flags.DEFINE_float("guidance", SAMPLE_OPTIONS["guidance"], "Classifier-free guidance scale s: "
                     "logits l_u + s (l_c - l_u) (1: the class's own; 0: unconditional); a "
                     "prior trained with label dropout.")
  flags.DEFINE_integer("steps", SAMPLE_OPTIONS["steps"], "Parallel decoding steps of a masked "
                       "prior (MaskGIT; 0: its default).")
  flags.DEFINE_float("choice_temperature", SAMPLE_OPTIONS["choice_temperature"], "Scale of "
                     "the Gumbel noise on a masked prior's confidences, annealed to 0 over the "
                     "steps (MaskGIT; 0: the most confident codes first; unset: its config's).")


def options() -> dict:
  """The sampling options the flags set (besides the temperature)."""
  return {name: FLAGS[name].value for name in SAMPLE_OPTIONS}
