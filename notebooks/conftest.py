"""nbval settings: compare text and the results payload; skip what changes between machines."""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += (
            "text/html",  # the same tables as text/plain, with markup
            "image/png",  # pixels differ between font and freetype versions
            "stderr",
            "application/vnd.cxresearch.provenance+json",  # file paths and hashes
        )
