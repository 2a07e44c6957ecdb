"""One file per stage kind. Each defines a `Stage` subclass (see `edgekit.compress.stage`) with its config;
the registry imports every module here, so adding a file adds the kind to recipes, the pipeline and the docs."""
