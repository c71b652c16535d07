"""The SavedModel that TF Serving loads: its three signatures and its warmup requests.

    serving_default(image_bytes)          encoded JPEG or PNG images of any size -> PNGs (sizing auto)
    translate_bytes(image_bytes, sizing)  the same, each image with its sizing: auto, resize, native or tiles
    translate(images)                     float32 batches in [-1, 1], sides multiples of 2**depth (native)

Every signature computes the export-mode generator (keras_pix2pix.modes) and sizes an image as
predict does: the rule that picks resize, native or tiles is keras_pix2pix.sizing's, run here in
the graph.
"""

import dataclasses
import os

import keras
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from keras_pix2pix import data, sizing
from keras_pix2pix.config import MAX_PIXELS
from keras_pix2pix.options import SIZINGS

# translate_bytes' branches, by name: an image's branch is its sizing's place here, whatever the order of SIZINGS.
_BRANCHES = ("resize", "native", "tiles")


def _checked_sizings(sizings, image_bytes):
    """The sizings of a request, once each is known and there is one per image; otherwise the request fails."""
    same = tf.debugging.assert_equal(tf.size(sizings), tf.size(image_bytes), message="sizing needs one choice per image")
    known = tf.debugging.assert_equal(
        tf.reduce_all(tf.reduce_any(tf.equal(sizings[:, None], tf.constant(SIZINGS)[None, :]), axis=1)), True,
        message=f"sizing must be one of {', '.join(SIZINGS)}",
    )
    with tf.control_dependencies([same, known]):
        return tf.identity(sizings)


@dataclasses.dataclass(frozen=True)
class _Signatures:
    """The export-mode generator as the signatures run it: one network for any size, and what they check."""

    any_size: keras.Model  # the same network at any size, for native translation; it shares the model's variables
    size: tuple  # (height, width) the model takes
    channels: int
    output_channels: int
    multiple: int  # what each side must be a multiple of, 2**depth
    max_pixels: int

    @classmethod
    def of(cls, model, max_pixels=MAX_PIXELS):
        height, width, channels = model.input_shape[1:]
        return cls(sizing.at_size(model, None, None), (height, width), channels, model.output_shape[-1],
                   sizing.downsampling(model), max_pixels)

    def run(self, images):
        return tf.cast(self.any_size(images, training=False), tf.float32)

    def translate(self, images):
        """float32 images in [-1, 1], each side a multiple of 2**depth -> float32 in [-1, 1] (native)."""
        shape = tf.shape(images)
        sides = tf.debugging.assert_equal(
            tf.stack([shape[1] % self.multiple, shape[2] % self.multiple]), 0,
            message=f"translate takes images whose sides are multiples of {self.multiple}: pad them (reflect) and "
            "crop the outputs, or send encoded images to translate_bytes",
        )
        with tf.control_dependencies([sides]):
            return {"images": self.run(images)}

    def decode(self, contents):
        # The size is read from the header and checked before decoding: a small file can claim
        # a huge image (a 285 KB PNG of 10000x10000 decodes to 1.2 GB of float32).
        size = data.header_size(contents)
        within = tf.debugging.assert_less_equal(
            size[0] * size[1], tf.constant(self.max_pixels, tf.int64),
            message=f"an image is larger than the limit of {self.max_pixels} pixels (export --max-pixels)",
        )
        with tf.control_dependencies([within]):
            return data.decode(contents, channels=self.channels)

    def native(self, image):
        within = tf.debugging.assert_equal(
            sizing.within_native_limit(tf.shape(image)[0], tf.shape(image)[1]), True,
            message=f"sizing native runs an image whole, and this one is over its limit of "
            f"{sizing.NATIVE_PIXELS / 1e6:g} megapixels: use tiles",
        )
        with tf.control_dependencies([within]):
            return sizing.run_padded(self.run, data.normalize(image), self.multiple)

    def translate_one(self, arguments):
        """(encoded image, its sizing) -> the PNG of its translation, at its size."""
        contents, choice = arguments
        image = self.decode(contents)
        # auto: sizing's rule, as predict applies it.
        choice = tf.where(tf.equal(choice, "auto"), sizing.auto_sizing(tf.shape(image)[:2], self.size), choice)
        branches = {
            "resize": lambda: sizing.resized(self.run, image, self.size),
            "native": lambda: self.native(image),
            "tiles": lambda: sizing.blend_tiles(
                lambda tile: self.run(tile)[0], data.normalize(image), self.size, self.output_channels
            ),
        }
        index = tf.argmax(tf.cast(tf.equal(choice, tf.constant(_BRANCHES)), tf.int32), output_type=tf.int32)
        output = tf.switch_case(index, [branches[name] for name in _BRANCHES])
        return tf.io.encode_png(data.denormalize(tf.ensure_shape(output, [None, None, self.output_channels])))

    def translate_bytes(self, image_bytes, sizings):
        """Encoded JPEG or PNG images of any size, each with its sizing -> PNG images of the same sizes."""
        # One image at a time: each may be of its own size and sizing, and memory stays that of one.
        output_bytes = tf.map_fn(self.translate_one, (image_bytes, _checked_sizings(sizings, image_bytes)),
                                 fn_output_signature=tf.string, parallel_iterations=1)
        # The _bytes suffix makes TF Serving's REST API return the PNGs base64-encoded.
        return {"output_bytes": output_bytes}

    def serve(self, image_bytes):
        """Encoded JPEG or PNG images of any size -> PNG images of the same sizes (sizing auto)."""
        return self.translate_bytes(image_bytes, tf.fill(tf.shape(image_bytes), "auto"))


def _warmup_records(path, model_name, sample_png):
    """assets.extra/tf_serving_warmup_requests: TF Serving replays these before it serves."""
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
    )
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([sample_png], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(log.SerializeToString())


def write_saved_model(model, path, model_name="pix2pix", max_pixels=MAX_PIXELS):
    """Writes the SavedModel (ExportArchive) with its three signatures and the warmup records.

    Args:
        model: the export-mode generator.
        path: the version folder to write.
        model_name: the name TF Serving serves it under (used in the warmup requests).
        max_pixels: the largest image serving_default decodes; a larger one fails the request.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> write_saved_model(build_generator(image_size=32, filters=4), tmp + "/served/1")
    >>> sorted(tf.saved_model.load(tmp + "/served/1").signatures)
    ['serving_default', 'translate', 'translate_bytes']
    """
    signatures = _Signatures.of(model, max_pixels)
    # Not archive.track(model): the archive saves the variables its endpoints use in any case,
    # and tracking the model saves each of them a second time (as its Keras variable), which
    # doubled variables/ (435.8 MB instead of 217.7 MB at 256x256) for TF Serving to download.
    archive = keras.export.ExportArchive()
    image_bytes = tf.TensorSpec([None], tf.string, name="image_bytes")
    archive.add_endpoint(name="serving_default", fn=signatures.serve, input_signature=[image_bytes])
    archive.add_endpoint(
        name="translate_bytes",
        fn=signatures.translate_bytes,
        input_signature=[image_bytes, tf.TensorSpec([None], tf.string, name="sizing")],
    )
    archive.add_endpoint(
        name="translate",
        fn=signatures.translate,
        input_signature=[tf.TensorSpec([None, None, None, signatures.channels], tf.float32, name="images")],
    )
    archive.write_out(path, verbose=False)
    height, width = signatures.size
    sample = tf.io.encode_png(tf.fill([height, width, signatures.channels], tf.constant(128, tf.uint8))).numpy()
    _warmup_records(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"), model_name, sample)
