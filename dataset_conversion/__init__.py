"""Converters from public dataset layouts to the nnssl raw format (installed as ``nnssl.dataset_conversion``).

- ``nnssl_convert_la``  (:mod:`nnssl.dataset_conversion.la`): Left Atrium in the UA-MT h5 layout.
- ``nnssl_convert_msd`` (:mod:`nnssl.dataset_conversion.msd`): any Medical Segmentation Decathlon task.
- ``nnssl_convert_pancreas`` (:mod:`nnssl.dataset_conversion.pancreas`): NIH Pancreas-CT (DICOM + NIfTI labels, or h5).
- ``nnssl_convert_brats`` (:mod:`nnssl.dataset_conversion.brats`): BraTS 2019 (HGG/LGG, whole-tumour labels).

All share :mod:`nnssl.dataset_conversion.common` (atomic writer, label checks, parallelism).
"""
