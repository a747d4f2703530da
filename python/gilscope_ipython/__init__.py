"""The IPython magics under their first name: `%load_ext gilscope_ipython` is `%load_ext gilscope`."""
from gilscope.ipython import Recording, load_ipython_extension, record_cell  # noqa: F401

__all__ = ["load_ipython_extension", "record_cell"]
