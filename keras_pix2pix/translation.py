"""Translate image files and folders with a trained generator: `keras-pix2pix predict`.

Each input is translated in a test-time mode (keras_pix2pix.modes) at the model's size or its
own (keras_pix2pix.sizing); a label model's outputs can be snapped to a palette and written with a
class-id PNG beside them (keras_pix2pix.labels).
"""

import os

import keras
import tensorflow as tf

from keras_pix2pix import data, datasets
from keras_pix2pix.config import UsageError, check_choice
from keras_pix2pix.errors import unusable_path
from keras_pix2pix.files import is_inside, output_folder, sweep_leftovers, write_atomically
from keras_pix2pix.labels import palette_named, snap
from keras_pix2pix.modes import prepare
from keras_pix2pix.options import MODES, SIZINGS, Predict, check_setting, defaults, tile_overlap_for
from keras_pix2pix.progress import Progress
from keras_pix2pix.seeding import keep_random_states
from keras_pix2pix.sizing import runner_for, translate_image
from keras_pix2pix.workdir import load_generator  # its home: the work directory's files; public here too

# NAME_classes.png: the class ids of NAME.png, written with --palette.
CLASSES_SUFFIX = "_classes"


def _input_files(inputs):
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = datasets.list_images(item)
            if not found:
                raise UsageError(f"no images ({', '.join(datasets.IMAGE_EXTENSIONS)}) in {item}")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise unusable_path("input", item, "an image file or a folder")
    if not files:
        raise UsageError("no input images given")
    return files


def _destinations(files, inputs, output_dir, overwrite, suffixes=("",)):
    """[OUTPUT/NAME{suffix}.png for each suffix] of each input, refusing any that would overwrite an input,
    each other, or (unasked) a file."""
    for item in inputs:
        if os.path.isdir(item) and is_inside(output_dir, item):
            raise UsageError(f"--output {output_dir} is the input folder {item} or inside it: pass another --output")
    inputs_by_path = {os.path.realpath(path): path for path in files}
    destinations, sources = [], {}
    for path in files:
        stem = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0])
        destinations.append([f"{stem}{suffix}.png" for suffix in suffixes])
        for destination in destinations[-1]:
            if os.path.realpath(destination) in inputs_by_path:
                raise UsageError(f"translating {path} would overwrite the input {destination}: pass another --output")
            if destination in sources:
                raise UsageError(
                    f"{sources[destination]} and {path} would both be written to {destination}: translate them "
                    "into separate --output folders"
                )
            sources[destination] = path
    existing = [path for path in sources if os.path.lexists(path)]
    if existing and not overwrite:
        raise UsageError(
            f"{existing[0]} exists already ({len(existing)} of the {len(sources)} outputs do): pass "
            "--overwrite to replace them, or another --output"
        )
    return destinations


def _write_output(output, destinations, palette):
    """NAME.png, and with a palette NAME.png snapped to its colours and NAME_classes.png of class ids."""
    image = data.denormalize(output)
    if palette is None:
        write_atomically(destinations[0], tf.io.encode_png(image).numpy())
        return
    colours, classes = snap(image.numpy(), palette)
    write_atomically(destinations[0], tf.io.encode_png(colours).numpy())
    write_atomically(destinations[1], tf.io.encode_png(classes[..., None]).numpy())


def _read_input(path, pairs, direction, channels, max_pixels):
    """An input image in [0, 1] with the model's channels: the whole file, or its input half."""
    image = data.read_image(path, max_pixels)
    if pairs:
        if image.shape[1] < 2 or image.shape[1] % 2:
            raise UsageError(f"{path} is {image.shape[1]} px wide: an AB pair image needs an even width (--pairs)")
        return data.split_pair(image, direction, channels, channels)[0]
    return data.to_channels(image, channels)


# Every default of predict is its option's (keras_pix2pix.options), the command line's too.
_DEFAULT = defaults(Predict)


@keep_random_states  # the seed given seeds this call alone, not the caller's random sequences
def predict(
    model, inputs, output_dir, *, pairs=_DEFAULT.pairs, direction=_DEFAULT.direction, mode=_DEFAULT.mode,
    seed=_DEFAULT.seed, overwrite=_DEFAULT.overwrite, skip_bad=_DEFAULT.skip_bad, max_pixels=_DEFAULT.max_pixels,
    sizing=_DEFAULT.sizing, tile_overlap=_DEFAULT.tile_overlap, palette=_DEFAULT.palette, log=print, verbose=True,
):
    """Translates image files and folders, writing one PNG per input into output_dir.

    Each output has the size of its input: by default an input no larger than the model's size is
    resized to it and the output resized back, and a larger one is translated in overlapping tiles
    at its own resolution (see keras_pix2pix.sizing). Nothing is written over an input, over another output of the same
    call, or over an existing file unless overwrite is set; every destination is checked
    before the first image is translated.

    Args:
        model: a work directory or a .keras file (see load_generator).
        inputs: image files and folders of images.
        output_dir: where to write NAME.png for each input NAME.
        pairs: the inputs are AB pair images: translate their input half.
        direction: which half is the input with pairs; None takes the run's direction.
        mode: "paper", "inference" or "export" (see keras_pix2pix.modes).
        seed: makes paper mode's dropout repeatable.
        overwrite: replace outputs that exist already.
        skip_bad: go on past an unreadable or oversized input (and say how many), instead of stopping.
        max_pixels: the largest input accepted, in pixels, checked from its header.
        sizing: "auto", "resize", "native" or "tiles" (see keras_pix2pix.sizing).
        tile_overlap: the overlap of neighbouring tiles, as a fraction of a tile (0 to 0.5), with
            sizing tiles or auto; None: sizing.DEFAULT_OVERLAP.
        palette: for a model that draws label maps, "cityscapes", "facades", "demo" or a file of "R G B"
            lines: each output pixel takes its nearest palette colour, and NAME_classes.png beside
            NAME.png holds each pixel's class id (cityscapes' 19 train ids; 255 where the colour is
            not an evaluated class, such as void), for other tools to read.
        log: where the note about skipped inputs (and the progress of many-tile images) goes.
        verbose: show the progress of several inputs (a bar on a terminal, lines in a log).

    Returns:
        The paths written (with a palette, NAME.png and NAME_classes.png of each input).

    Example:
    >>> [os.path.basename(path) for path in predict(workdir, [image_file], tmp + "/translated")]
    ['1.png']
    """
    check_choice("mode", mode, MODES)
    check_setting("max_pixels", max_pixels)
    check_choice("sizing", sizing, SIZINGS)
    tile_overlap = tile_overlap_for(sizing, tile_overlap)
    label_palette = None if palette is None else palette_named(palette, "--palette")
    files = _input_files(inputs)
    suffixes = ("",) if label_palette is None else ("", CLASSES_SUFFIX)
    destinations = _destinations(files, inputs, output_dir, overwrite, suffixes)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    generator, config = load_generator(model)
    runner = runner_for(prepare(generator, mode), sizing)
    if pairs and direction is None:
        direction = config.direction if config is not None and config.direction else "AtoB"
    channels = generator.input_shape[-1]
    with output_folder(output_dir, "--output"):
        sweep_leftovers(output_dir, log)
        written, skipped = [], []
        many = verbose and len(files) > 1
        progress = Progress(len(files), "translated", log_every=max(1, len(files) // 20)) if many else None
        for index, (path, destination) in enumerate(zip(files, destinations)):
            try:
                image = _read_input(path, pairs, direction, channels, max_pixels)
            except UsageError as problem:
                if not skip_bad:
                    if progress:
                        progress.close()
                    written_before = f"{len(written)} image(s) written before it"
                    raise UsageError(f"{problem} ({written_before}; --skip-bad goes on past it)") from None
                skipped.append(str(problem))
                continue
            output = translate_image(runner, image, mode, sizing, tile_overlap, log)
            _write_output(output, destination, label_palette)
            written.extend(destination)
            if progress:
                progress.update(index + 1)
    if progress:
        progress.close()
    if skipped:
        log(f"skipped {len(skipped)} bad input(s) of {len(files)}; the first: {skipped[0]}")
    return written
