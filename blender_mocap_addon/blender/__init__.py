"""bpy glue: builds armatures and keys from ``core`` results, retargets onto a user's rig,
exports. Plain functions that take options and raise ``MocapError``; no UI, no operators."""
