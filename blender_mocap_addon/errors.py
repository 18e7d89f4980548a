"""The add-on's one domain exception (no bpy; importable anywhere)."""


class MocapError(Exception):
    """Anything the user must be told about: bad pose file, missing bones, failed job.

    Operators catch it (report ERROR, return CANCELLED); batch catches it (stderr,
    non-zero exit).  Glue code converts core errors (PoseFileError, BoneMapError,
    RetargetError, ValueError from the maths) into it with ``raise ... from``.
    """
