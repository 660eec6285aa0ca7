"""The plugin is tested as users meet it: in a fresh pytest run (``pytester``)."""

pytest_plugins = ["pytester"]
