"""Scaling up: the nearest-code search in chunks of codes against the whole N x K distances
(indices, values, losses, gradients, EMA statistics, memory), deeper downsampling of the conv
nets (f = 8, 16) with the paper's network unchanged by default, and the bench's memory
columns."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvq import config as config_lib
from jaxvq.bench import formulations
from jaxvq.errors import ConfigError
from jaxvq.registry import default_config, model_class
from jaxvq.models.quantizers.vq import VectorQuantizer
from jaxvq.models.vqvae import VQVAE
from jaxvq.nets import build_encoder_decoder, layers
from jaxvq.nets.conv import stage_widths
from jaxvq.ops import codebook as codebook_lib
from jaxvq.ops import conv_kernels, residual_vq, vq


def _inputs_and_codes(n=700, k=300, d=16, seed=0):
  """Random inputs [n, d] and codes [k, d], with exact ties: codes 7, 150 and k - 1 are one
  vector, and some inputs are that vector or code 64's (which is also code 255)."""
  rng = np.random.default_rng(seed)
  codes = rng.normal(size=(k, d)).astype(np.float32)
  codes[[150, k - 1]] = codes[7]
  codes[255] = codes[64]
  inputs = rng.normal(size=(n, d)).astype(np.float32)
  inputs[:10] = codes[7]
  inputs[10:20] = codes[255]
  return jnp.asarray(inputs), jnp.asarray(codes)


# 64 does not divide 300 (the last chunk is padded); 1 and 299 are the extremes.
CHUNKS = (1, 64, 100, 299)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_chunked_search_gives_the_full_searchs_indices_ties_to_the_first(chunk):
  inputs, codes = _inputs_and_codes()
  full_index, full_distance = jax.jit(lambda x, c: vq.nearest_codes(x, c, -1))(inputs, codes)
  index, distance = jax.jit(lambda x, c: vq.nearest_codes(x, c, chunk))(inputs, codes)
  np.testing.assert_array_equal(np.asarray(index), np.asarray(full_index))
  np.testing.assert_array_equal(np.asarray(index[:10]), 7)       # not 150 or 299
  np.testing.assert_array_equal(np.asarray(index[10:20]), 64)    # not 255
  np.testing.assert_array_equal(np.asarray(full_index), np.asarray(
      jnp.argmin(vq.squared_distances(inputs, codes), axis=1)))
  np.testing.assert_allclose(np.asarray(distance), np.asarray(full_distance), rtol=1e-5,
                             atol=1e-5)


def test_chunked_search_gives_a_nan_input_the_last_index_as_first_argmin():
  inputs, codes = _inputs_and_codes()
  inputs = inputs.at[3, 2].set(jnp.nan)
  want = vq.first_argmin(vq.squared_distances(inputs, codes))
  assert int(want[3]) == codes.shape[0] - 1
  for chunk in CHUNKS:
    np.testing.assert_array_equal(np.asarray(vq.nearest_codes(inputs, codes, chunk)[0]),
                                  np.asarray(want))


def test_search_chunk_is_automatic_above_the_threshold_and_never_below():
  assert vq.search_chunk(1000, 512, 0) == 0                          # 512k distances: whole
  assert vq.search_chunk(16384, 16384, 0) == vq.AUTO_CHUNK_ELEMENTS // 16384
  assert vq.search_chunk(2 ** 20, 4096, 0) == vq.MIN_AUTO_CHUNK
  assert vq.search_chunk(16384, 16384, -1) == 0
  assert vq.search_chunk(10, 300, 64) == 64
  assert vq.search_chunk(10, 300, 300) == 0                          # one chunk is the whole


def _quantize_loss(inputs, codes, chunk, rotation_trick=False):
  """A decoder-like loss of the quantized values plus the quantizer's loss, and its parts."""
  weights = jnp.sin(jnp.arange(inputs.size, dtype=jnp.float32)).reshape(inputs.shape)
  q = vq.quantize(inputs, codes, commitment_cost=0.3, codebook_cost=0.7,
                  rotation_trick=rotation_trick, search_chunk_size=chunk)
  return jnp.sum(q.quantized * weights) + q.loss, q


@pytest.mark.parametrize("rotation_trick", [False, True])
def test_chunked_quantize_has_the_full_quantizes_values_losses_and_gradients(rotation_trick):
  inputs, codes = _inputs_and_codes()
  inputs = inputs.reshape(7, 10, 10, 16)
  grad = jax.jit(jax.value_and_grad(_quantize_loss, argnums=(0, 1), has_aux=True),
                 static_argnums=(2, 3))
  (full_loss, full), full_grads = grad(inputs, codes, -1, rotation_trick)
  for chunk in (64,):
    (loss, q), grads = grad(inputs, codes, chunk, rotation_trick)
    for a, b in [(loss, full_loss), (q.quantized, full.quantized), (q.indices, full.indices),
                 (q.codebook_loss, full.codebook_loss), (q.commitment_loss,
                 full.commitment_loss), (q.loss, full.loss), (q.perplexity, full.perplexity),
                 (q.usage, full.usage), (grads[0], full_grads[0]), (grads[1], full_grads[1])]:
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert float(jnp.abs(full_grads[1]).sum()) > 0     # the codebook loss moves the codes


def _vq_section(**keys):
  q = default_config("vqvae").quantizer
  q.update(num_codes=300, **keys)
  return q


def test_chunked_quantizer_gives_the_full_ones_ema_statistics_and_codes():
  inputs, codes = _inputs_and_codes()
  z_e = inputs.reshape(7, 10, 10, 16)
  results = []
  for chunk in (-1, 64):
    quantizer = VectorQuantizer(_vq_section(codebook_update="ema", search_chunk_size=chunk), 16,
                                rngs=nnx.Rngs(0))
    quantizer.codebook.set(codes)
    out = quantizer(z_e, jax.random.key(0), training=True)
    quantizer.update_after_step(out, jax.random.key(1), jnp.asarray(0))
    results.append([out.indices, quantizer.encode(z_e), quantizer.codebook.cluster_size[...],
                    quantizer.codebook.embed_sum[...], quantizer.codebook.vectors[...]])
  for a, b in zip(*results):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The statistics themselves, from the two searches' indices.
  flat = inputs
  stats = [codebook_lib.assignment_statistics(flat, vq.nearest_codes(flat, codes, c)[0], 300)
           for c in (-1, 1)]
  for a, b in zip(*stats):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_residual_vq_and_kmeans_search_the_same_way_chunked():
  inputs, codes = _inputs_and_codes()
  codebooks = jnp.stack([codes, codes[::-1] * 0.5])
  full = residual_vq.residual_quantize(inputs, codebooks, search_chunk_size=-1)
  chunked = residual_vq.residual_quantize(inputs, codebooks, search_chunk_size=64)
  np.testing.assert_array_equal(np.asarray(chunked.indices), np.asarray(full.indices))
  np.testing.assert_array_equal(np.asarray(chunked.loss), np.asarray(full.loss))
  error = codebook_lib.quantization_error(inputs, codes)
  np.testing.assert_allclose(float(error), float(jnp.mean(jnp.min(
      vq.squared_distances(inputs, codes), axis=1))), rtol=1e-6)


def test_chunked_search_holds_no_n_by_k_matrix():
  """16384 inputs against 16384 codes: 1 GiB of distances whole, a chunk's share chunked."""
  x = jax.ShapeDtypeStruct((16384, 32), jnp.float32)
  c = jax.ShapeDtypeStruct((16384, 32), jnp.float32)

  def temp_bytes(chunk):
    fn = jax.jit(lambda x, c: vq.quantize(x, c, search_chunk_size=chunk).loss)
    return fn.lower(x, c).compile().memory_analysis().temp_size_in_bytes

  whole = 16384 * 16384 * 4
  assert temp_bytes(-1) >= whole
  assert temp_bytes(0) <= whole // 16          # automatic: chunks of 256 codes
  assert temp_bytes(1024) <= whole // 4


def test_entropy_loss_refuses_a_chunked_search_and_keeps_the_distances_when_automatic():
  with pytest.raises(ConfigError, match="search_chunk_size"):
    VectorQuantizer(_vq_section(entropy_loss_weight=0.1, search_chunk_size=64), 16,
                    rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="entropy"):
    vq.quantize(jnp.zeros((4, 16)), jnp.ones((300, 16)), entropy_loss_weight=0.1,
                search_chunk_size=64)
  x = jax.ShapeDtypeStruct((16384, 16), jnp.float32)
  c = jax.ShapeDtypeStruct((2048, 16), jnp.float32)
  fn = jax.jit(lambda x, c: vq.quantize(x, c, entropy_loss_weight=0.1).loss)
  assert fn.lower(x, c).compile().memory_analysis().temp_size_in_bytes >= 16384 * 2048 * 4


# ------------------------------------------------------------------ downsampling

# The paper's network as it was before downsampling became a setting (hidden 64, residual 16,
# one block, 3 channels, D = 8): each parameter's shape.
PAPER_ENCODER = {"down1": (4, 4, 3, 32), "down2": (4, 4, 32, 64), "conv": (3, 3, 64, 64),
                 "residual/blocks/0/conv3": (3, 3, 64, 16),
                 "residual/blocks/0/conv1": (1, 1, 16, 64), "out": (1, 1, 64, 8)}
PAPER_DECODER = {"conv": (3, 3, 8, 64), "residual/blocks/0/conv3": (3, 3, 64, 16),
                 "residual/blocks/0/conv1": (1, 1, 16, 64), "up1": (4, 4, 64, 32),
                 "up2": (4, 4, 32, 3)}
# configs/vqvae_fashion_mnist.py's parameters before downsampling became a setting.
DEMO_PARAMETERS = 206497


def _abstract(build):
  """The module `build()` makes, with shapes for parameters (nothing is computed)."""
  return nnx.eval_shape(build)


def _output_shape(module, *args):
  """What an abstract module returns for abstract (or real) arguments, traced only."""
  graphdef, state = nnx.split(module)
  return jax.eval_shape(lambda s, *a: nnx.merge(graphdef, s)(*a), state, *args)


def _kernel_shapes(module):
  state = nnx.state(module, nnx.Param)
  shapes = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    names = [str(getattr(p, "key", getattr(p, "idx", getattr(p, "name", "")))) for p in path]
    if "kernel" in names:
      shapes["/".join(names[:names.index("kernel")])] = tuple(leaf.shape)
  return shapes


def test_default_conv_nets_are_the_papers_network():
  cfg = default_config("vqvae")
  cfg.update(hidden=64, residual_hidden=16, num_residual_blocks=1, embedding_dim=8)
  encoder, decoder = _abstract(lambda: build_encoder_decoder(
      cfg, (32, 32, 3), encoder_out=8, decoder_in=8, rngs=nnx.Rngs(0))[:2])
  assert _kernel_shapes(encoder) == PAPER_ENCODER
  assert _kernel_shapes(decoder) == PAPER_DECODER
  demo = config_lib.load_file("configs/vqvae_fashion_mnist.py")
  model = _abstract(lambda: VQVAE(demo.model, (28, 28, 1), data_variance=1.0,
                                  rngs=nnx.Rngs(0)))
  assert sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param))) == DEMO_PARAMETERS


@pytest.mark.parametrize("factor,multipliers", [(8, (1, 2, 2)), (16, (1, 1, 2, 4))])
def test_deeper_downsampling_shrinks_the_grid_with_fast_stride_2_kernels(monkeypatch, factor,
                                                                          multipliers):
  calls = {"down": 0, "up": 0}

  def counted(name, fn):
    def wrapper(*args):
      calls[name] += 1
      return fn(*args)
    return wrapper

  monkeypatch.setattr(conv_kernels, "conv_4x4_stride_2",
                      counted("down", conv_kernels.conv_4x4_stride_2))
  monkeypatch.setattr(layers, "transposed_conv_4x4_stride_2",
                      counted("up", layers.transposed_conv_4x4_stride_2))
  cfg = default_config("vqvae")
  cfg.update(hidden=8, residual_hidden=4, num_residual_blocks=1, downsample=factor,
             channel_multipliers=multipliers)
  encoder, decoder = _abstract(lambda: build_encoder_decoder(
      cfg, (32, 64, 3), encoder_out=5, decoder_in=5, rngs=nnx.Rngs(0))[:2])
  z = _output_shape(encoder, jax.ShapeDtypeStruct((2, 32, 64, 3), jnp.float32))
  assert z.shape == (2, 32 // factor, 64 // factor, 5)
  assert _output_shape(decoder, z).shape == (2, 32, 64, 3)
  stages = len(multipliers)
  assert calls == {"down": stages, "up": stages}      # every stride-2 stage, both ways
  widths = stage_widths(8, multipliers)
  shapes = _kernel_shapes(encoder)
  assert [shapes[f"down{s + 1}"][3] for s in range(stages)] == widths
  assert shapes["conv"] == (3, 3, widths[-1], widths[-1])
  assert _kernel_shapes(decoder)[f"up{stages}"] == (4, 4, widths[0], 3)


def test_autoencoder_and_vae_take_the_downsampling_too(tiny):
  for model in ("autoencoder", "vae"):
    for architecture in ("conv", "conv_vector"):
      config = tiny(model)
      config.model.update(architecture=architecture, downsample=8, channel_multipliers=(1, 1, 2))
      net = _abstract(lambda c=config: model_class(model)(
          c.model, (32, 32, 1), data_variance=1.0, rngs=nnx.Rngs(0)))
      images = jax.ShapeDtypeStruct((2, 32, 32, 1), jnp.float32)
      out = _output_shape(net, images, jax.random.key(0))
      assert out.reconstruction.shape == (2, 32, 32, 1)
      if architecture == "conv":
        assert _output_shape(net.encoder, images).shape[1:3] == (4, 4)


def test_bad_downsampling_is_refused_at_setup(tiny, experiment):
  config = tiny("vqvae")                       # fashion_mnist: 28x28
  config.model.update(downsample=8, channel_multipliers=(1, 1, 1))
  with pytest.raises(ConfigError, match="multiples of 8"):
    experiment(config)
  config = tiny("vqvae")
  config.update(image_size=32)
  config.model.downsample = 16
  with pytest.raises(ConfigError, match="channel_multipliers needs 4 entries"):
    experiment(config)
  config.model.downsample = 32
  with pytest.raises(ConfigError, match="downsample"):
    config_lib.check(config)


@pytest.mark.slow
def test_a_deeper_vqvae_with_a_chunked_search_trains(tiny, tmp_path):
  from jaxvq.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  config = tiny("vqvae")
  config.image_size = 32
  config.num_train_steps = 4
  config.eval_every_steps = config.checkpoint_every_steps = 4
  config.model.update(downsample=8, channel_multipliers=(1, 1, 2))
  config.model.quantizer.update(search_chunk_size=5, codebook_update="ema")   # 16 codes
  metrics = train_and_evaluate(config, str(tmp_path / "run"))
  assert np.isfinite(metrics["normalized_mse"]) and metrics["codebook_usage"] > 0


# ------------------------------------------------------------------ bench

@pytest.mark.slow
def test_bench_rows_have_xla_memory_and_compare_search_chunks_in_turns(tiny):
  config = tiny("vqvae")
  rows = formulations.search_chunk_profile(config, [-1, 5], steps=1, warmup=1, rounds=2)
  assert [r["search_chunk_size"] for r in rows] == [-1, 5]
  assert [r["codes_per_chunk"] for r in rows] == [16, 5]
  for row in rows:
    assert len(row["step_ms_per_turn"]) == 2 and row["median_step_ms"] > 0
    assert row["temp_mib"] > 0 and row["argument_mib"] > 0
    assert row["peak_memory_mib"] == pytest.approx(
        row["argument_mib"] + row["output_mib"] - row["alias_mib"] + row["temp_mib"], abs=0.02)
  config.model.quantizer = default_config("vqvae", quantizer="fsq").quantizer
  with pytest.raises(ConfigError, match="search_chunk_sizes"):
    formulations.search_chunk_profile(config, [-1], steps=1, warmup=0, rounds=1)
