"""Translate one image with a keras-pix2pix model on TF Serving's gRPC API.

    python export/grpc_client.py --server localhost:8500 --model facades labels.jpg --output photo.png

Needs tensorflow and tensorflow-serving-api (pip install tensorflow-serving-api).
"""

import argparse
import sys

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2


def grpc_request(image_bytes, model_name, sizing=None):
    """A PredictRequest with one encoded image: to serving_default, or to translate_bytes with a sizing."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "serving_default" if sizing is None else "translate_bytes"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([image_bytes], dtype=tf.string))
    if sizing is not None:
        request.inputs["sizing"].CopyFrom(tf.make_tensor_proto([sizing], dtype=tf.string))
    return request


def grpc_response_image(response):
    """The PNG bytes of the first image of a PredictResponse."""
    return tf.make_ndarray(response.outputs["output_bytes"])[0]


def main():
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model", required=True, help="the served model name")
    parser.add_argument("image", help="a JPEG or PNG image")
    parser.add_argument("--output", required=True, help="where to save the translated PNG")
    parser.add_argument("--sizing", choices=("auto", "resize", "native", "tiles"), help="default: the server's (auto)")
    arguments = parser.parse_args()
    with open(arguments.image, "rb") as file:
        request = grpc_request(file.read(), arguments.model, arguments.sizing)
    # Generated images are large: raise gRPC's 4 MB default message limit.
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(arguments.server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=120)
        except grpc.RpcError as error:
            print(f"grpc_client: error: {arguments.server}: {error.code().name}: {error.details()}", file=sys.stderr)
            return 2
    with open(arguments.output, "wb") as file:
        file.write(grpc_response_image(response))
    print(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
