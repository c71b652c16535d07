"""The pix2pix release: its six datasets, and a tensorflow-datasets builder that prepares them.

The datasets (facades, cityscapes, maps, edges2shoes, edges2handbags, night2day) come through
the builder `pix2pix`, which TFDS knows once this module is imported (importing keras_pix2pix
alone does not import it, so that the command line starts without TensorFlow):

    import keras_pix2pix.release
    train = tfds.load("pix2pix/facades", split="train")

TFDS keeps the prepared data in its data dir, so a second run downloads and reads no archive
again.

Archives of the release are trusted on first use. A download is written to a temporary file and
kept only when it has every byte the server announced and reads end to end as a tar.gz
(keras_pix2pix.downloads); its SHA-256 is then recorded beside it, as DOWNLOAD_DIR/NAME.tar.gz.sha256
(the builder's download dir, DATA_DIR/downloads by default). An archive given with --manual-dir
has its digest recorded in the download dir too, as manual-NAME.tar.gz.sha256, so that nothing is
written into the user's folder. Each later use compares the archive with its record (after the
digest pinned in ARCHIVE_SHA256, when there is one) and refuses a changed file; to accept a new
archive, delete its .sha256 record and run again.
"""

import dataclasses
import os
import pathlib

import tensorflow_datasets as tfds

from keras_pix2pix import data
from keras_pix2pix.config import UsageError
from keras_pix2pix.downloads import (
    check_pinned,
    check_recorded,
    download,
    file_sha256,
    safe_archive_files,
)
from keras_pix2pix.files import write_atomically
from keras_pix2pix.progress import Progress

DEFAULT_DATASETS_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
# SHA-256 of the release archives, checked after each download when known. The release publishes
# none and this project's build machines cannot reach it, so none is pinned yet; the digest of
# every download is printed so that a user can pin theirs.
ARCHIVE_SHA256 = {}


@dataclasses.dataclass(eq=False)
class Pix2PixConfig(tfds.core.BuilderConfig):
    """One dataset of the pix2pix release.

    Args:
        splits: split folders in the archive.
        half_size: (height, width) of each half of an AB image.
        direction: the usual direction of the paper's task.
        train_pairs: training pairs according to the paper.
        task: the paper's translation task.
    """

    splits: tuple = ("train", "val")
    half_size: tuple = (256, 256)
    direction: str = "AtoB"
    train_pairs: int = 0
    task: str = ""


CATALOG = (
    Pix2PixConfig(
        name="facades",
        description="CMP Facades: building photos (A) and colour label maps (B).",
        splits=("train", "val", "test"),
        direction="BtoA",
        train_pairs=400,
        task="labels -> photo",
    ),
    Pix2PixConfig(
        name="cityscapes",
        description="Cityscapes: street photos (A) and semantic label maps (B).",
        direction="BtoA",
        train_pairs=2975,
        task="labels -> photo",
    ),
    Pix2PixConfig(
        name="maps",
        description="Google Maps: aerial photos (A) and map renderings (B), 600x600.",
        half_size=(600, 600),
        direction="AtoB",
        train_pairs=1096,
        task="aerial -> map",
    ),
    Pix2PixConfig(
        name="edges2shoes",
        description="UT Zappos50K shoes: HED edge maps (A) and photos (B).",
        direction="AtoB",
        train_pairs=49825,
        task="edges -> photo",
    ),
    Pix2PixConfig(
        name="edges2handbags",
        description="Amazon handbags: HED edge maps (A) and photos (B).",
        direction="AtoB",
        train_pairs=138567,
        task="edges -> photo",
    ),
    Pix2PixConfig(
        name="night2day",
        description="Transient Attributes webcams: night (A) and day (B) views of the same scene.",
        direction="AtoB",
        train_pairs=17823,
        task="night -> day",
    ),
)
CATALOG_NAMES = tuple(entry.name for entry in CATALOG)

CITATION = """@inproceedings{isola2017image,
  title={Image-to-Image Translation with Conditional Adversarial Networks},
  author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A},
  booktitle={CVPR},
  year={2017}
}"""


def datasets_url():
    """The base URL of the archives: $KERAS_PIX2PIX_DATASETS_URL (a mirror or file:// folder) or the release.

    Example:
    >>> datasets_url().startswith(("https://", "http://", "file://"))
    True
    """
    return os.environ.get("KERAS_PIX2PIX_DATASETS_URL", DEFAULT_DATASETS_URL).rstrip("/")


class Pix2Pix(tfds.core.GeneratorBasedBuilder):
    """The pix2pix release as a tensorflow-datasets builder: `tfds.load("pix2pix/facades")`.

    Each example holds the original AB JPEG bytes (`image`, decoded by TFDS unless skipped) and
    its `file_name`. Archives are read from `--manual-dir` when given, else downloaded from
    $KERAS_PIX2PIX_DATASETS_URL or the release.

    Example:
    >>> import keras_pix2pix.release  # registers the builder with TFDS
    >>> import tensorflow_datasets as tfds
    >>> # Downloads the release, so not run by the tests:
    >>> train = tfds.load("pix2pix/facades", split="train")  # doctest: +SKIP
    """

    name = "pix2pix"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The six datasets of the pix2pix release, original JPEG bytes."}
    BUILDER_CONFIGS = list(CATALOG)
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the release archive NAME.tar.gz (for example facades.tar.gz) in the manual folder."
    )

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.builder_config.description,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                    "file_name": tfds.features.Text(),
                }
            ),
            homepage="https://phillipi.github.io/pix2pix/",
            citation=CITATION,
        )

    def _archive(self, dl_manager):
        """The path of this dataset's archive, from --manual-dir, the download cache or the server.

        The archive's digest is checked against ARCHIVE_SHA256 first, then against the digest
        recorded at its first use (see the module's docstring), which is written when missing.
        """
        name = self.builder_config.name
        file_name = f"{name}.tar.gz"
        try:
            manual_dir = dl_manager.manual_dir
        except AssertionError:
            manual_dir = None
        os.makedirs(dl_manager.download_dir, exist_ok=True)
        if manual_dir is not None:
            path = os.path.join(manual_dir, file_name)
            if not os.path.isfile(path):
                raise UsageError(f"--manual-dir {manual_dir} holds no {file_name}")
            # Recorded in the download dir: nothing is written into the user's folder.
            record = os.path.join(dl_manager.download_dir, f"manual-{file_name}.sha256")
            digest = file_sha256(path)
        else:
            path = os.path.join(dl_manager.download_dir, file_name)
            record = f"{path}.sha256"
            if os.path.isfile(path):
                digest = file_sha256(path)
            else:
                url = f"{datasets_url()}/{file_name}"
                print(f"downloading {url}", flush=True)
                digest = download(url, path)
                print(f"downloaded {path} (SHA-256 {digest})", flush=True)
                check_pinned(path, digest, ARCHIVE_SHA256.get(name))
                # A fresh download, complete and readable: the reference for its later uses.
                write_atomically(record, digest + "\n")
                return path
        check_pinned(path, digest, ARCHIVE_SHA256.get(name))
        check_recorded(path, record, digest)
        return path

    # tfds prints these two in bold escape codes, with "Unknown size" for archives it does not
    # know the size of: plain lines instead, fit for a terminal and a log alike.
    def _log_download_bytes(self):
        print(f"preparing the pix2pix {self.builder_config.name} release in {self.data_dir}", flush=True)

    def _log_download_done(self):
        print(f"prepared {self.builder_config.name} in {self.data_dir}; later runs read it from there", flush=True)

    def _split_generators(self, dl_manager):
        archive = self._archive(dl_manager)
        return {split: self._generate_examples(archive, split) for split in self.builder_config.splits}

    def _generate_examples(self, archive, split):
        """Yields the AB images of one split folder of the archive; the others' bytes are not read.

        The builder calls it once per split, so each call reads the archive through once.
        """

        def in_split(member):
            parts = pathlib.PurePosixPath(member).parts
            return len(parts) >= 2 and parts[-2] == split and parts[-1].lower().endswith(data.IMAGE_EXTENSIONS)

        count = 0
        total = self.builder_config.train_pairs if split == "train" else None
        progress = Progress(total, f"prepared {split} pairs", rate_unit="pairs", log_every=1000)
        for member, contents in safe_archive_files(archive, wanted=in_split):
            problem, _ = data.inspect_image(contents, ab=True)
            if problem:
                progress.close()
                raise UsageError(f"{archive}: {member} {problem}")
            count += 1
            progress.update(count)
            yield member, {"image": contents, "file_name": pathlib.PurePosixPath(member).name}
        progress.close()
        if not count:
            raise UsageError(f"{archive} holds no images in a {split}/ folder")


def catalog_entry(name):
    """The Pix2PixConfig of one dataset of the release.

    Args:
        name: one of CATALOG_NAMES.

    Example:
    >>> catalog_entry("maps").half_size
    (600, 600)
    """
    return next(entry for entry in CATALOG if entry.name == name)
