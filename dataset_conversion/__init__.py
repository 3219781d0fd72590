"""Converters from public dataset layouts to the nnssl raw format (installed as ``nnssl.dataset_conversion``).

- ``nnssl_convert_la``  (:mod:`nnssl.dataset_conversion.la`): Left Atrium in the UA-MT h5 layout.
- ``nnssl_convert_msd`` (:mod:`nnssl.dataset_conversion.msd`): any Medical Segmentation Decathlon task.

Both share :mod:`nnssl.dataset_conversion.common` (atomic writer, label checks, parallelism).
"""
