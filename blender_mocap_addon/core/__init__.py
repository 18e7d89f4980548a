"""Pure-numpy core of the add-on: no bpy, no torch, never the engine. Importable outside
Blender. Imports only numpy and the pose-file contract (``contract.posefile``)."""
