"""The pose file: the contract between the engine and the Blender add-on, and the project's
one joint/skeleton definition.

Numpy only (no torch, no bpy), MIT-licensed, imported by the engine and copied into the
Blender extension zip by ``tools/build_extension.py``. ``format`` reads, validates and writes
pose files; ``skeleton`` names the 16 joints, their tree, bones and left/right pairs.
"""
from .format import (FLOOR_STATUSES, FORMAT_VERSION, READABLE_VERSIONS, PoseData, PoseFileError,
                     default_camera_K, empty, load, save, to_arrays, validate, world_joints,
                     write_posefile)
from .skeleton import (BONES, FLIP_PAIRS, FLIP_PERM, JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS,
                       PELVIS)

__all__ = ["FLOOR_STATUSES", "FORMAT_VERSION", "READABLE_VERSIONS", "PoseData", "PoseFileError",
           "default_camera_K", "empty", "load", "save", "to_arrays", "validate", "world_joints",
           "write_posefile", "BONES", "FLIP_PAIRS", "FLIP_PERM",
           "JOINT_INDEX", "JOINT_NAMES", "NUM_JOINTS", "PARENTS", "PELVIS"]
