"""Data: find or fetch the dataset, scan and audit it, split it.

The ``tf.data`` input pipeline lives in ``course_utils.data.pipeline`` so that the
audit and the command line do not pay for importing TensorFlow.
"""
