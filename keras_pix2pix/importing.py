"""The authors' pretrained pix2pix generators as keras-pix2pix work directories: `keras-pix2pix import`.

junyanz/pytorch-CycleGAN-and-pix2pix publishes five pix2pix generators (PRETRAINED), each a
PyTorch state_dict of its UnetGenerator. `import_checkpoint` reads one without PyTorch
(keras_pix2pix.state_dicts), infers the U-Net from its tensors (channels, base filters, depth,
batch or instance norm, which convolutions have biases), builds the same network in stock Keras
layers with the authors' dropout placement, copies every weight and writes a work directory:
config.json, generator.keras and a checkpoint at step 0 from which `fit` fine-tunes (with a
fresh discriminator: the authors did not publish theirs).

Layout conversions: PyTorch's Conv2d kernels are (out, in, height, width) and ConvTranspose2d's
(in, out, height, width); Keras' Conv2D kernels are (height, width, in, out) and
Conv2DTranspose's (height, width, out, in): both are transposed by (2, 3, 1, 0), without a flip,
since both libraries' transposed convolutions are the adjoint of the same correlation. The skip
concatenations need no reordering: the U-Net here concatenates [skip, decoder], as
torch.cat([x, model(x)]).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from keras_pix2pix import checkpoints, datasets, downloads, files, models
from keras_pix2pix.config import DIRECTIONS, Config, UsageError, check_choice
from keras_pix2pix.optimization import make_optimizers
from keras_pix2pix.options import Import, defaults
from keras_pix2pix.state_dicts import read_state_dict
from keras_pix2pix.workdir import (
    CHECKPOINTS,
    CONFIG,
    GENERATOR,
    checkpoint_directory,
    default_workdir,
    write_config,
    write_generator,
)

DEFAULT_MODELS_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
MODELS_URL_VARIABLE = "KERAS_PIX2PIX_MODELS_URL"
# What to do when a download fails, the end of each of those errors.
RETRY = f"try again, set {MODELS_URL_VARIABLE} to a mirror, or download the model file by hand and pass --manual-dir"


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """One of the authors' pix2pix generators: its task, the dataset it was trained on and the direction."""

    name: str
    dataset: str
    direction: str
    task: str


PRETRAINED = (
    Pretrained("facades_label2photo", "facades", "BtoA", "facade label map -> photo"),
    Pretrained("sat2map", "maps", "AtoB", "aerial photo -> map"),
    Pretrained("map2sat", "maps", "BtoA", "map -> aerial photo"),
    Pretrained("edges2shoes", "edges2shoes", "AtoB", "edges -> shoe photo"),
    Pretrained("day2night", "night2day", "BtoA", "day -> night"),
)
PRETRAINED_NAMES = tuple(model.name for model in PRETRAINED)


def models_url():
    """The base URL of the pretrained generators: $KERAS_PIX2PIX_MODELS_URL (a mirror or file:// folder) or the authors'."""
    return os.environ.get(MODELS_URL_VARIABLE, DEFAULT_MODELS_URL).rstrip("/")


def pretrained_path(name, data_dir=None):
    """Where a downloaded pretrained generator is kept: DATA_DIR/pix2pix_pretrained/NAME.pth."""
    return os.path.join(datasets.resolve_data_dir(data_dir), "pix2pix_pretrained", f"{name}.pth")


def fetch_pretrained(name, data_dir=None, manual_dir=None, log=print):
    """The local .pth of a pretrained generator: from manual_dir, the cache, or downloaded (checked whole) into the cache."""
    check_choice("pretrained model", name, PRETRAINED_NAMES)
    if manual_dir:
        path = os.path.join(manual_dir, f"{name}.pth")
        if not os.path.isfile(path):
            raise UsageError(f"--manual-dir {manual_dir} holds no {name}.pth")
        return path
    path = pretrained_path(name, data_dir)
    if not os.path.isfile(path):
        files.make_folder(os.path.dirname(path), "the data directory")
        url = f"{models_url()}/{name}.pth"
        log(f"downloading {url}")
        digest = downloads.download(url, path, verify=read_state_dict, kind="PyTorch checkpoint", retry=RETRY)
        log(f"downloaded {path} (SHA-256 {digest})")
    return path


@dataclasses.dataclass(frozen=True)
class UnetLayout:
    """A junyanz UnetGenerator read from its state_dict.

    Args:
        blocks: per U-Net level, outermost first: (down conv, down norm or None, up conv, up norm
            or None), each the prefix of its tensors' names.
        input_channels, output_channels, filters: the network's channels and base filters.
        norm: "batch" or "instance".
        biases: "normless" or "all" (see models.build_generator).
    """

    blocks: tuple
    input_channels: int
    output_channels: int
    filters: int
    norm: str
    biases: str

    @property
    def depth(self):
        return len(self.blocks)


def _what_it_is(state):
    """A guess of what a state_dict that is not a pix2pix U-Net holds, for the refusal."""
    names = list(state)
    if any(".conv_block." in name for name in names):
        return "a ResNet generator (junyanz's resnet_*blocks: conv_block tensors)"
    first = state.get("model.0.weight")
    if isinstance(first, np.ndarray) and first.ndim == 4:
        return f"a PatchGAN discriminator (its first convolution takes {first.shape[1]} channels)"
    return f"{len(names)} tensors whose first are {', '.join(names[:3])}"


def unet_layout(state, path="the checkpoint"):
    """Reads the architecture of a junyanz UnetGenerator from its state_dict, every tensor of which it checks.

    Args:
        state: name -> numpy array (see state_dicts.read_state_dict).
        path: the file's name, for messages.

    Raises:
        UsageError, in one line naming the tensor, what a U-Net holds there and what the state_dict
        does, for anything but a junyanz U-Net (see check_state_dict).
    """
    prefix = "model.model."
    if f"{prefix}0.weight" not in state or f"{prefix}3.weight" not in state:
        raise UsageError(f"{path} is not a pix2pix U-Net generator: it holds {_what_it_is(state)}")
    blocks = [(f"{prefix}0", None, f"{prefix}3", None)]
    level = f"{prefix}1.model."
    while any(name.startswith(f"{level}3.model.") for name in state):  # a middle block: it has a submodule
        blocks.append((f"{level}1", f"{level}2", f"{level}5", f"{level}6"))
        level = f"{level}3.model."
    blocks.append((f"{level}1", None, f"{level}3", f"{level}4"))  # the innermost block
    norm_names = [name for _, down_norm, _, up_norm in blocks for name in (down_norm, up_norm) if name]
    if any(f"{name}.running_mean" in state for name in norm_names):
        norm = "batch"
    elif any(f"{name}.weight" in state for name in norm_names):
        raise UsageError(f"{path} uses instance norm with affine parameters, which junyanz's pix2pix never trains")
    else:
        norm = "instance"
    # The channels and filters are read from the outermost convolutions, so those are checked first.
    first, last = state[f"{prefix}0.weight"], state[f"{prefix}3.weight"]
    for name, shape, what in ((f"{prefix}0.weight", ("filters", "input channels", 4, 4), "a U-Net's first convolution"),
                              (f"{prefix}3.weight", ("2 x filters", "output channels", 4, 4), "a U-Net's last convolution")):
        _check_tensor(state, name, shape, what, path)
    layout = UnetLayout(
        blocks=tuple(blocks), input_channels=int(first.shape[1]), output_channels=int(last.shape[1]),
        filters=int(first.shape[0]), norm=norm, biases="all" if f"{blocks[1][0]}.bias" in state else "normless",
    )
    check_state_dict(state, layout, path)
    return layout


BATCHNORM_TENSORS = ("weight", "bias", "running_mean", "running_var")


def _expected_tensors(layout):
    """name -> shape of each tensor the import reads from a state_dict of this layout (junyanz's UnetSkipConnectionBlock)."""
    filters = [layout.filters * 2 ** min(index, 3) for index in range(layout.depth)]  # per level, as build_generator's
    expected = {}
    for index, (down, down_norm, up, up_norm) in enumerate(layout.blocks):
        outer = layout.output_channels if index == 0 else filters[index - 1]
        # The up convolution takes the skip concatenation (twice the level's filters), but at the innermost level.
        up_input = filters[index] if index == layout.depth - 1 else 2 * filters[index]
        expected[f"{down}.weight"] = (filters[index], layout.input_channels if index == 0 else outer, 4, 4)
        if layout.biases == "all":
            expected[f"{down}.bias"] = (filters[index],)
        if layout.norm == "batch" and down_norm:
            expected.update({f"{down_norm}.{name}": (filters[index],) for name in BATCHNORM_TENSORS})
        expected[f"{up}.weight"] = (up_input, outer, 4, 4)
        if layout.biases == "all" or index == 0:  # no normalization follows the output convolution
            expected[f"{up}.bias"] = (outer,)
        if layout.norm == "batch" and up_norm:
            expected.update({f"{up_norm}.{name}": (outer,) for name in BATCHNORM_TENSORS})
    return expected


def check_state_dict(state, layout, path="the checkpoint"):
    """Refuses, in one line naming the tensor, a state_dict that does not hold exactly the U-Net `layout` describes.

    Every tensor the import reads is checked here, before any is read: present, an array of the
    shape the layout gives it, floating point; and nothing else is there but BatchNorm's
    num_batches_tracked, which Keras does not keep.

    Args:
        state: name -> numpy array.
        layout: the UnetLayout that the names and the outermost convolutions describe.
        path: the file's name, for messages.
    """
    biases = "every convolution" if layout.biases == "all" else "the output convolution"
    unet = f"a U-Net of {layout.depth} levels, {layout.filters} base filters, {layout.norm} norm and biases on {biases}"
    expected = _expected_tensors(layout)
    for name, shape in expected.items():
        _check_tensor(state, name, shape, unet, path)
    norms = [norm for _, down_norm, _, up_norm in layout.blocks for norm in (down_norm, up_norm) if norm]
    counters = {f"{norm}.num_batches_tracked" for norm in norms} if layout.norm == "batch" else set()
    extra = [name for name in state if name not in expected and name not in counters]
    if extra:
        more = f" (nor are {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise UsageError(f"{path} is not a pix2pix U-Net generator: {extra[0]} is no tensor of {unet}{more}")


def _check_tensor(state, name, shape, unet, path):
    """Refuses state[name] unless it is a floating-point array of `shape`, whose named sides may be any positive length."""
    shown = f"({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''})"
    refusal = f"{path} is not a pix2pix U-Net generator: {name}"
    if name not in state:
        raise UsageError(f"{refusal} is missing, where {unet} has one of shape {shown}")
    value = state[name]
    if not isinstance(value, np.ndarray):
        raise UsageError(f"{refusal} is a {type(value).__name__}, where {unet} has an array of shape {shown}")
    if value.ndim != len(shape) or any(
        side != wanted if isinstance(wanted, int) else side < 1 for side, wanted in zip(value.shape, shape)
    ):
        raise UsageError(f"{refusal} has shape {value.shape}, where {unet} has {shown}")
    if not np.issubdtype(value.dtype, np.floating):
        raise UsageError(f"{refusal} holds {value.dtype} values, where {unet} has floating-point ones")


def _kernel(weights):
    """A PyTorch (out, in, h, w) or transposed (in, out, h, w) kernel in Keras' (h, w, in, out) / (h, w, out, in)."""
    return np.ascontiguousarray(weights.transpose(2, 3, 1, 0))


def _assign(layer, values):
    layer.set_weights([value.astype(np.float32) for value in values])  # shapes: see check_state_dict


def _copy_level(generator, state, layout, index):
    """Copies one U-Net level's tensors (down conv and norm, up conv and norm) into the Keras generator."""
    down, down_norm, up, up_norm = layout.blocks[index]
    depth = layout.depth

    def conv(layer_name, prefix):
        values = [_kernel(state[f"{prefix}.weight"])]
        if f"{prefix}.bias" in state:
            values.append(state[f"{prefix}.bias"])
        _assign(generator.get_layer(layer_name), values)

    def batchnorm(layer_name, prefix):
        _assign(generator.get_layer(layer_name), [state[f"{prefix}.{name}"] for name in BATCHNORM_TENSORS])

    conv(f"down{index + 1}_conv", down)
    if layout.norm == "batch" and down_norm:
        batchnorm(f"down{index + 1}_batchnorm", down_norm)
    if index == 0:
        conv("output_convtranspose", up)
        return
    decoder_index = depth - index  # the innermost level's up block is the decoder's first
    conv(f"up{decoder_index}_convtranspose", up)
    if layout.norm == "batch":
        batchnorm(f"up{decoder_index}_batchnorm", up_norm)


def generator_from_state_dict(state, image_size=None, dropout=0.5, path="the checkpoint"):
    """The Keras generator (stock layers) of a junyanz UnetGenerator state_dict, and its layout.

    Args:
        state: name -> numpy array (see state_dicts.read_state_dict).
        image_size: the size the generator takes; None: 2**depth (256 for the published models).
        dropout: the rate of the authors' dropout blocks (0.5 in every published pix2pix model).
        path: the file's name, for messages.

    Example:
    >>> generator, layout = generator_from_state_dict(read_state_dict(pytorch_checkpoint))
    >>> generator.input_shape, layout.depth, layout.norm
    ((None, 256, 256, 3), 8, 'batch')
    """
    layout = unet_layout(state, path)
    side = 2**layout.depth
    generator = models.build_generator(
        image_size=image_size or side, input_channels=layout.input_channels, output_channels=layout.output_channels,
        depth=layout.depth, filters=layout.filters, norm=layout.norm, dropout=dropout, biases=layout.biases,
        dropout_placement="authors",
    )
    for index in range(layout.depth):
        _copy_level(generator, state, layout, index)
    return generator, layout


def _config_for(layout, generator, dataset, direction):
    height, width = generator.input_shape[1:3]
    return Config(
        dataset=dataset, direction=direction, image_size=(height, width), input_channels=layout.input_channels,
        output_channels=layout.output_channels, depth=layout.depth, generator_filters=layout.filters,
        norm=layout.norm, generator_biases=layout.biases, dropout_placement="authors",
    )


def _write_workdir(folder, generator, config):
    """config.json, generator.keras and a checkpoint at step 0 (the generator, a fresh discriminator, fresh optimizers)."""
    training_generator, discriminator = models.build_models(config)
    training_generator.set_weights(generator.get_weights())
    generator_optimizer, discriminator_optimizer = make_optimizers(config, total_steps=1, decay_steps=0)
    generator_optimizer.build(training_generator.trainable_variables)
    discriminator_optimizer.build(discriminator.trainable_variables)
    checkpoint = checkpoints.make_checkpoint(training_generator, discriminator, generator_optimizer, discriminator_optimizer)
    directory = checkpoint_directory(folder, tf.distribute.get_strategy())
    checkpoints.save(checkpoints.make_manager(checkpoint, directory, config.keep_checkpoints), 0)
    write_generator(folder, generator)
    write_config(folder, config)


# Moved from the staging folder into the work directory in this order: config.json last, because
# a folder holds a run once it has one.
_WORKDIR_ENTRIES = (CHECKPOINTS, GENERATOR, CONFIG)


def _write_into(workdir, generator, config):
    """Writes the work directory in a staging folder inside it, then moves each entry into place.

    Staged inside the folder the user named, never beside it: nothing outside it is ever created
    or swept. A failure or a stop leaves no staging folder, and a work directory this call created
    is removed again (files.output_folder).
    """
    with files.output_folder(workdir, "--workdir"), files.staging_folder(workdir, "import") as staging:
        _write_workdir(staging, generator, config)
        for name in _WORKDIR_ENTRIES:
            os.replace(os.path.join(staging, name), os.path.join(workdir, name))


# Every default of import_checkpoint is its option's (keras_pix2pix.options), the command line's too.
_DEFAULT = defaults(Import)


def import_checkpoint(checkpoint, workdir=_DEFAULT.workdir, *, direction=_DEFAULT.direction,
                      image_size=_DEFAULT.image_size, dataset=_DEFAULT.dataset, data_dir=_DEFAULT.data_dir,
                      manual_dir=_DEFAULT.manual_dir, log=print):
    """Turns a junyanz pix2pix generator (.pth) into a keras-pix2pix work directory; returns the generator.

    Args:
        checkpoint: a .pth file, or one of PRETRAINED_NAMES (downloaded once, checked whole).
        workdir: the work directory to create (it must not hold a run); None: runs/NAME.
        direction: the direction of its task; default: the pretrained model's, else AtoB.
        image_size: the size the generator takes; default: 2**depth (256).
        dataset: the dataset config.json names, for `fit` (fine-tuning), `evaluate` and int8
            calibration; default: the pretrained model's, else demo.
        data_dir: where downloads are kept (see datasets.resolve_data_dir).
        manual_dir: a folder holding NAME.pth downloaded by hand.
        log: where the report goes.

    Returns:
        The imported generator (also WORKDIR/generator.keras).

    Example:
    >>> generator = import_checkpoint(pytorch_checkpoint, tmp + "/imported", dataset=pairs_folder, log=lambda line: None)
    >>> sorted(os.listdir(tmp + "/imported"))
    ['checkpoints', 'config.json', 'generator.keras']
    """
    known = next((model for model in PRETRAINED if model.name == checkpoint), None)
    if known and not os.path.exists(checkpoint):
        path = fetch_pretrained(checkpoint, data_dir, manual_dir, log)
    elif os.path.isfile(checkpoint):
        path = checkpoint
    else:
        raise UsageError(f"{checkpoint} is neither a .pth file nor one of {', '.join(PRETRAINED_NAMES)}")
    direction = check_choice("direction", direction or (known.direction if known else "AtoB"), DIRECTIONS)
    name = known.name if known else os.path.splitext(os.path.basename(path))[0]
    workdir = workdir or default_workdir(name)
    if os.path.isdir(workdir):
        files.sweep_leftovers(workdir, log)  # what a killed import into it left
    if os.path.exists(workdir) and (not os.path.isdir(workdir) or os.listdir(workdir)):
        raise UsageError(f"--workdir {workdir} exists and is not an empty folder: import into a new one")
    generator, layout = generator_from_state_dict(read_state_dict(path), image_size, path=path)
    config = _config_for(layout, generator, dataset or (known.dataset if known else "demo"), direction)
    _write_into(workdir, generator, config)
    log(
        f"imported {path}: U-Net {layout.depth} levels, {layout.filters} base filters, {layout.norm} norm, "
        f"{models.trainable_parameters(generator):,} trainable parameters, {config.direction}, "
        f"{config.image_size[0]}x{config.image_size[1]} -> {workdir}"
    )
    log(f"the discriminator starts fresh (the authors published none): fine-tune with "
        f"keras-pix2pix fit --workdir {workdir} --dataset {config.dataset} --steps N")
    return generator
