"""The embedded demo dataset: procedural facades, generated once into the data directory.

Each pair is a label map of a house (sky, wall, windows, door, roof, sills, ground) and its
rendering as a photo with bricks, glass, wood grain, shingles and lighting. Labels -> photo is a
real translation task (textures must be invented from flat colours), small enough to learn in a
few hundred steps at 64x64 on a CPU, and it needs no network and no data files. Like facades,
the photo is on the left and the labels on the right: the usual direction is BtoA.
"""

import os
import shutil

import numpy as np
import tensorflow as tf

VERSION = "1.0.0"
# The photo is on the left and the labels on the right, as in facades: labels -> photo is BtoA.
DIRECTION = "BtoA"

CLASSES = ("sky", "wall", "window", "door", "roof", "sill", "ground")
PALETTE = np.array(
    [
        (0, 0, 170),  # sky
        (255, 85, 0),  # wall
        (0, 170, 255),  # window
        (170, 255, 85),  # door
        (255, 0, 0),  # roof
        (255, 255, 0),  # sill
        (0, 85, 0),  # ground
    ],
    dtype=np.uint8,
)
SPLITS = {"train": 200, "val": 40}
WALL_COLOURS = np.array([(150, 70, 50), (196, 176, 136), (140, 140, 132), (176, 110, 80)], dtype=np.float32)


def _scene(random, size):
    """One (label map, photo) pair of the demo dataset, as uint8 arrays of size x size."""
    labels, frames, wall_rows = _layout(random, size)
    return PALETTE[labels], _render(random, labels, frames, wall_rows)


def _layout(random, size):
    """A facade's label map, its window frames (a mask) and the rows its wall spans (top, ground)."""
    labels = np.zeros((size, size), dtype=np.uint8)
    rows, cols = np.mgrid[0:size, 0:size]
    unit = size / 256

    ground_top = int(random.uniform(222, 240) * unit)
    left, right = int(random.uniform(12, 60) * unit), int(random.uniform(196, 244) * unit)
    top = int(random.uniform(60, 110) * unit)
    labels[top:ground_top, left:right] = 1
    roof_height = int(random.uniform(18, 48) * unit)
    overhang = int(6 * unit)
    middle = (left + right) / 2
    half_width = (right - left) / 2 + overhang
    # A triangle: rows above the wall, narrowing linearly towards the apex.
    in_roof = (rows < top) & (rows >= top - roof_height)
    in_roof &= np.abs(cols - middle) <= half_width * (rows - (top - roof_height)) / max(roof_height, 1)
    labels[in_roof] = 4
    labels[ground_top:] = 6

    door_width = int(random.uniform(28, 44) * unit)
    door_height = int(random.uniform(48, 72) * unit)
    door_left = int(random.uniform(left + 8 * unit, right - door_width - 8 * unit))
    labels[ground_top - door_height : ground_top, door_left : door_left + door_width] = 3

    window_rows = random.randint(1, 4)
    window_cols = random.randint(2, 6)
    floor_bottom = ground_top - door_height - int(8 * unit)
    cell_height = (floor_bottom - top) / window_rows
    cell_width = (right - left) / window_cols
    window_height = int(cell_height * random.uniform(0.45, 0.7))
    window_width = int(cell_width * random.uniform(0.4, 0.7))
    frames = np.zeros_like(labels, dtype=bool)
    frame = max(1, int(3 * unit))
    for row in range(window_rows):
        for col in range(window_cols):
            y = int(top + row * cell_height + (cell_height - window_height) / 2)
            x = int(left + col * cell_width + (cell_width - window_width) / 2)
            if window_height < 4 or window_width < 4:
                continue
            labels[y : y + window_height, x : x + window_width] = 2
            frames[y : y + window_height, x : x + window_width] = True
            frames[y + frame : y + window_height - frame, x + frame : x + window_width - frame] = False
            # A mullion cross, part of the frame.
            frames[y + window_height // 2 - frame // 2 : y + window_height // 2 + (frame + 1) // 2, x : x + window_width] = True
            frames[y : y + window_height, x + window_width // 2 - frame // 2 : x + window_width // 2 + (frame + 1) // 2] = True
            sill = max(2, int(5 * unit))
            labels[y + window_height : y + window_height + sill, max(left, x - frame) : x + window_width + frame] = 5
    return labels, frames, (top, ground_top)


def _render(random, labels, frames, wall_rows):
    """The photo of a label map: each class with its texture, lit differently in each image (so the task has some freedom)."""
    size = labels.shape[0]
    rows, cols = np.mgrid[0:size, 0:size]
    unit = size / 256
    top, ground_top = wall_rows
    noise = random.normal(0, 6, (size, size, 1)).astype(np.float32)
    sky_mix = (rows / size)[..., None]
    sky = (1 - sky_mix) * np.array([105, 155, 225]) + sky_mix * np.array([205, 222, 240])
    brick_height = 12 * unit
    course = np.floor(rows / brick_height)
    joint = (rows % brick_height < 2 * unit) | ((cols + (course % 2) * 12 * unit) % (24 * unit) < 2 * unit)
    wall = np.broadcast_to(WALL_COLOURS[random.randint(len(WALL_COLOURS))], (size, size, 3)).copy()
    wall *= (0.92 + 0.08 * np.sin(course * 2.7) )[..., None]
    wall[joint] = (205, 200, 190)
    glass = np.array([40, 55, 80]) + ((top + ground_top) / 2 - rows)[..., None] * 0.25 * np.array([1, 1, 1.2])
    glass = np.clip(glass, 20, 120)
    glass[frames] = (235, 235, 230)
    grain = 0.85 + 0.15 * np.sin(cols * 0.9 / unit + np.sin(rows * 0.05 / unit) * 3)
    door = np.array([105, 62, 32]) * grain[..., None]
    shingle = (rows % (8 * unit)) < 2 * unit
    roof = np.where(shingle[..., None], np.array([45, 45, 52]), np.array([82, 80, 92])).astype(np.float64)
    sill = np.broadcast_to(np.array([215, 210, 195]), (size, size, 3))
    ground = np.array([105, 110, 95]) + random.normal(0, 10, (size, size, 1))
    textures = np.stack([sky, wall, glass, door, roof, sill, ground])
    photo = np.take_along_axis(textures, labels[None, ..., None].astype(np.int64), axis=0)[0]
    light = random.uniform(0.85, 1.15) * (1 + random.uniform(-0.12, 0.12) * (cols / size - 0.5))
    return np.clip(photo * light[..., None] + noise, 0, 255).astype(np.uint8)


def pair(index, split="train", size=256):
    """The demo dataset's pair number `index` as an AB uint8 array (photo left, labels right).

    Args:
        index: the pair's number within its split.
        split: "train" or "val"; the splits draw from different random streams.
        size: the side of each half.

    Example:
    >>> pair(0).shape
    (256, 512, 3)
    """
    random = np.random.RandomState([2017, list(SPLITS).index(split), index])
    label_map, photo = _scene(random, size)
    return np.concatenate([photo, label_map], axis=1)


def folder(data_dir):
    """Where the demo dataset is kept under data_dir (written by prepare).

    Args:
        data_dir: the folder for prepared datasets.

    Example:
    >>> folder("/data")
    '/data/keras_pix2pix_demo/1.0.0'
    """
    return os.path.join(data_dir, "keras_pix2pix_demo", VERSION)


def prepare(data_dir):
    """Writes the demo dataset once under data_dir and returns its folder.

    It is built in a temporary folder and renamed into place, so an interrupted build leaves
    nothing that looks complete.

    Args:
        data_dir: the folder for prepared datasets.
    """
    prepared = folder(data_dir)
    if os.path.isdir(prepared):
        return prepared
    temporary = f"{prepared}.incomplete-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    for split, count in SPLITS.items():
        os.makedirs(os.path.join(temporary, split))
        for index in range(count):
            png = tf.io.encode_png(pair(index, split))
            tf.io.write_file(os.path.join(temporary, split, f"{index + 1}.png"), png)
    try:
        os.replace(temporary, prepared)
    except OSError:
        # Another process finished first; its copy is identical.
        shutil.rmtree(temporary, ignore_errors=True)
    return prepared
