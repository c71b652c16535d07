"""python -m keras_pix2pix: the same as the keras-pix2pix command."""

import sys

from keras_pix2pix.cli import main

if __name__ == "__main__":
    sys.exit(main())
