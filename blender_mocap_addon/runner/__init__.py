"""Work outside Blender's main thread: the engine subprocess (``jobs``), the headless batch
entry point (``batch``) and the pool that runs many videos (``batch_pool``). No bpy in ``jobs``
or ``batch_pool``."""
