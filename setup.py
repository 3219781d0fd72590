"""nnssl: semi-supervised segmentation for nnU-Net v2.

The repository keeps `planning/` and `dataset_conversion/` at the top level (the project's
layout), but they are installed as `nnssl.planning` and `nnssl.dataset_conversion` so that no
generic top-level name lands in site-packages.
"""
from setuptools import setup

PACKAGES = [
    "nnssl",
    "nnssl.cli",
    "nnssl.data",
    "nnssl.evaluation",
    "nnssl.losses",
    "nnssl.pseudo_labels",
    "nnssl.quality",
    "nnssl.self_training",
    "nnssl.planning",
    "nnssl.dataset_conversion",
    "nnssl_trainers",
]

setup(
    name="nnssl",
    version="0.1.0",
    description="Semi-supervised medical image segmentation on top of nnU-Net v2",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={
        "nnssl.planning": "planning",
        "nnssl.dataset_conversion": "dataset_conversion",
    },
    # the discovery folder is deliberately no package: nnU-Net scans it for trainer modules
    package_data={"nnssl_trainers": ["discovery/*.py"]},
    install_requires=[
        "nnunetv2>=2.8",
        "torch>=2.1",
        "batchgenerators>=0.25",
        "batchgeneratorsv2>=0.2",
        "acvl-utils>=0.2",
        "dynamic-network-architectures>=0.4",
        "SimpleITK>=2.2",
        "numpy",
        "scipy",
        "scikit-image",
        "h5py",
    ],
    extras_require={
        "test": ["pytest>=7", "medpy>=0.5"],
    },
    entry_points={
        "console_scripts": [
            "nnssl_convert_la=nnssl.dataset_conversion.la:main",
            "nnssl_convert_msd=nnssl.dataset_conversion.msd:main",
            "nnssl_convert_pancreas=nnssl.dataset_conversion.pancreas:main",
            "nnssl_convert_brats=nnssl.dataset_conversion.brats:main",
            "nnssl_validate_unlabeled=nnssl.data.validation:main",
            "nnssl_plan_and_preprocess=nnssl.planning.plan_and_preprocess:main",
            "nnssl_derive_plans=nnssl.planning.derive_plans:main",
            "nnssl_train=nnssl.cli.train:main",
            "nnssl_ext_trainer_path=nnssl.cli.discovery:main",
            "nnssl_evaluate=nnssl.evaluation.evaluate:main",
            "nnssl_train_quality_predictor=nnssl.quality.train:main",
            "nnssl_self_train=nnssl.self_training.cli:main",
        ]
    },
)
