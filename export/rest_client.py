"""Translate one image with a keras-pix2pix model on TF Serving's REST API.

    python export/rest_client.py --server http://localhost:8501 --model facades labels.jpg --output photo.png

Sends the image's bytes base64-encoded to the serving_default signature and saves the PNG that
comes back (the same size as the input). Needs only the Python standard library.
"""

import argparse
import base64
import json
import sys
import urllib.request


def rest_request(image_bytes):
    """The JSON body of a predict request for one encoded image (JPEG or PNG)."""
    return {"signature_name": "serving_default", "instances": [{"b64": base64.b64encode(image_bytes).decode("ascii")}]}


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
    arguments = parser.parse_args()
    with open(arguments.image, "rb") as file:
        body = json.dumps(rest_request(file.read())).encode()
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
