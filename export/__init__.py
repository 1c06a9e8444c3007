"""edgeft.export: Keras backbone -> verified ONNX bundle. Needs the `export` extra (TensorFlow).

Importing this package is cheap; TensorFlow is imported by the modules that use it, so
`edgeft backbones` and `edgeft inspect` stay fast.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter is not for users
