from setuptools import find_packages, setup


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


setup(
    name='clustseg',
    version='0.1.0',
    description='ClustSeg: Clustering for Universal Segmentation (ICML 2023) on OpenMMLab',
    long_description=readme(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'demo', 'docs')),
    python_requires='>=3.10',
    # The pinned stack is installed by tools/install.sh (order matters: torch, then mmcv built
    # against it); see requirements/.
    install_requires=[],
    # the shipped superpixel model (weights + self-contained config) for clustseg.superpixels
    package_data={'clustseg.weights': ['*.pth', '*.py']},
    include_package_data=True,
    # ONNX export / onnxruntime backend; pinned in requirements/onnx.txt (installed by
    # tools/install.sh)
    extras_require={'onnx': ['onnx', 'onnxruntime']},
    entry_points={
        'console_scripts': ['clustseg-superpixels = clustseg.cli.superpixels:main'],
    },
    zip_safe=False,
)
