"""Translate one image with a keras-pix2pix model on TF Serving's REST API.

    python export/rest_client.py --server http://localhost:8501 --model facades labels.jpg --output photo.png

Sends the image's bytes base64-encoded to the serving_default signature (sizing auto: resized to
the model's size if no larger, else blended tiles) or, with --sizing, to translate_bytes with that
choice (resize, native, tiles), and saves the PNG that comes back (the same size as the input).
Needs only the Python standard library.
"""

import argparse
import base64
import json
import sys
import urllib.request


def rest_request(image_bytes, sizing=None):
    """The JSON body of a predict request for one encoded image (JPEG or PNG), with its sizing if given."""
    encoded = {"b64": base64.b64encode(image_bytes).decode("ascii")}
    if sizing is None:
        return {"signature_name": "serving_default", "instances": [encoded]}
    return {"signature_name": "translate_bytes", "instances": [{"image_bytes": encoded, "sizing": sizing}]}


def rest_response_image(response):
    """The PNG bytes of the first prediction of a decoded JSON response."""
    prediction = response["predictions"][0]
    # One output named output_bytes: TF Serving returns its value directly, base64 in {"b64": ...}.
    if "output_bytes" in prediction:
        prediction = prediction["output_bytes"]
    return base64.b64decode(prediction["b64"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://localhost:8501")
    parser.add_argument("--model", required=True, help="the served model name")
    parser.add_argument("image", help="a JPEG or PNG image")
    parser.add_argument("--output", required=True, help="where to save the translated PNG")
    parser.add_argument("--sizing", choices=("auto", "resize", "native", "tiles"), help="default: the server's (auto)")
    arguments = parser.parse_args()
    with open(arguments.image, "rb") as file:
        body = json.dumps(rest_request(file.read(), arguments.sizing)).encode()
    url = f"{arguments.server.rstrip('/')}/v1/models/{arguments.model}:predict"
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    except OSError as error:
        print(f"rest_client: error: {url}: {error}", file=sys.stderr)
        return 2
    with open(arguments.output, "wb") as file:
        file.write(rest_response_image(answer))
    print(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
