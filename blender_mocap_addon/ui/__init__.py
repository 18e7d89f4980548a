"""What the user sees: scene properties, preferences, panels and operators. Operators turn
properties into options and call one function of ``blender``/``runner``."""
