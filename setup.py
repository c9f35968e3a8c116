from setuptools import find_packages, setup

setup(
    name="zabd",
    use_incremental=True,
    setup_requires=["incremental"],
    description="A ZooKeeper-compatible coordination service on Twisted",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # The project root as the one package root: an editable install then puts the root itself on
    # sys.path (a static .pth, where setuptools would otherwise install an import hook that knows
    # zabd alone), and Twisted finds twisted/plugins/zabd_plugin.py there, as it looks for
    # twisted/plugins in every sys.path entry (twisted.plugin.pluginPackagePaths).
    package_dir={"": "."},
    packages=find_packages(exclude=["tests", "tests.*"]) + ["twisted.plugins"],
    package_data={"zabd": ["py.typed"]},
    # TLS: Twisted's (pyOpenSSL); key stores: cryptography (PKCS12, PEM) and pyjks (JKS).
    install_requires=["twisted[tls]>=24.7", "pyOpenSSL>=24.2", "cryptography>=43", "pyjks", "attrs",
                      "incremental>=24.7"],
    extras_require={
        "test": [
            "pytest",
            "pytest-timeout",
            "hypothesis",
            "kazoo>=2.10",
            # kazoo's own suite (tests/interop/test_kazoo_suite.py) imports objgraph (and pyjks).
            "objgraph",
            "treq",
            # /metrics is checked with the Prometheus text-format parser.
            "prometheus_client",
            "mypy",
            "mypy-zope",
            # The layer and no-cycle contracts in pyproject.toml (tests/unit/test_layers.py).
            "import-linter",
            # Builds the editable install of tests/interop/test_editable_install.py without a download.
            "wheel",
        ],
    },
    entry_points={"console_scripts": ["zabd = zabd.peer.cli:main", "zabd-bench = zabd.tools.bench:main"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Distributed Computing",
    ],
)
