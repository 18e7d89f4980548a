"""The pose-file contract (``posefile``) as the add-on sees it.

The package lives at the top of the checkout (MIT, shared with the engine); the extension zip
carries a copy as ``core/posefile/`` (``tools/build_extension.py``), because an installed extension
cannot import from the checkout.
"""
try:  # the extension zip: the copy beside this module
    from . import posefile
except ImportError:  # a checkout: the top-level package
    import posefile

__all__ = ["posefile"]
