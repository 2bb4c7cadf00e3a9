"""kseg: FCN, U-Net and Mask R-CNN for Keras 3."""

from setuptools import find_packages, setup

setup(
    name="kseg",
    version="0.1.0",
    description="Keras 3 model zoo for image segmentation: FCN, U-Net and Mask R-CNN "
                "(Matterport Mask_RCNN lineage)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kseg", "kseg.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.8",
        "numpy",
        "scikit-image",
        "scipy",
        "h5py",
        "pycocotools",
        "matplotlib",
        "pillow",
        "tqdm",
    ],
    extras_require={
        "tf": ["tensorflow>=2.16"],
        "tf-cpu": ["tensorflow-cpu>=2.16"],
        "jax": ["jax[cpu]"],
        "torch": ["torch"],
        "onnx": ["onnxruntime", "tf2onnx"],
        "dev": [
            "pytest",
            "nbclient",
            "nbformat",
            "ipykernel",
            "ruff",
            "jax[cpu]",
            # tests/test_backends.py trains on the PyTorch backend; 2.13.0 has a CPU build
            # (torch-2.13.0+cpu) beside pip on the project's machines.
            "torch==2.13.0",
            "onnxruntime",
            "tf2onnx",
        ],
    },
    entry_points={"console_scripts": ["kseg=kseg.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
