"""An example plugin package (docs/plugins.md): one explanation method (``methods``) and one localisation
metric (``metrics``) registered from outside vit-heatmap-check.  Name the modules in an experiment's
``plugins`` key with this folder's parent on ``PYTHONPATH``, or install the package with an entry point."""
