import pathlib
import re

from setuptools import find_packages, setup

here = pathlib.Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"', (here / "keras_pix2pix" / "__init__.py").read_text()).group(1)
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

ONNX = ["tf2onnx>=1.17", "onnxruntime>=1.20"]

setup(
    name="keras-pix2pix",
    version=version,
    description="pix2pix image-to-image translation (Isola et al., CVPR 2017) in TensorFlow / Keras 3",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    # The web page's template lives in export/browser (one page, beside the other deployment assets)
    # and is installed as keras_pix2pix/browser, where export --format web finds it (keras_pix2pix.web).
    packages=[*find_packages(include=["keras_pix2pix", "keras_pix2pix.*"]), "keras_pix2pix.browser"],
    package_dir={"keras_pix2pix.browser": "export/browser"},
    package_data={"keras_pix2pix.browser": ["index.html", "page.js", "pix2pix.js", "package.json"]},
    python_requires=">=3.10",
    install_requires=requirements,
    extras_require={
        # export --format onnx: the converter, and the runtime that checks its file.
        "onnx": ONNX,
        # ruff and vulture: tests/test_lint.py keeps the tree lint-clean and free of dead code.
        "test": [
            "pytest>=8", "pytest-xdist>=3", "hypothesis>=6", "nbclient>=0.10", "nbformat>=5", "ipykernel>=6",
            "ruff>=0.8", "vulture>=2.11", *ONNX,
            # tests/test_web.py drives Debian's chromium (never a browser Playwright downloads).
            "playwright>=1.40",
        ],
    },
    entry_points={"console_scripts": ["keras-pix2pix=keras_pix2pix.cli:main"]},
)
