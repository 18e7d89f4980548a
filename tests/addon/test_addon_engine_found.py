"""The engine found without typed paths (issue 28, item 5): install_deps records it in a
settings file the add-on reads; mocap.convert from a script (EXEC, no window) runs the
engine synchronously with progress printed, or fails saying what to do."""
import os
import stat
import sys

import pytest

from blender_mocap_addon.runner import engine_settings, jobs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE_PY = r'''#!/bin/sh
# stands in for "PYTHON -m inference VIDEO -o OUT ...": JSON-lines progress, then a pose file
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
exec {python} -c '
import json, sys
sys.path.insert(0, "{root}")
out = sys.argv[1]
for i in range(4):
    print(json.dumps({{"frame": i, "total": 4, "fps": 10.0, "eta": 0.1}}), flush=True)
import posefile
from blender_mocap_addon.core import synthetic
posefile.write_posefile(out, **synthetic.pose_arrays(2, 15))
print(json.dumps({{"frame": 4, "total": 4, "done": True, "output": out, "people": 2, "warnings": []}}), flush=True)
' "$out"
'''


def test_settings_file_is_read_and_used_when_no_checkout_is_around(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "engine.json"
    monkeypatch.setenv(engine_settings.ENV, str(path))
    assert engine_settings.read() == {}                           # no file yet
    engine_settings.write(ROOT, sys.executable)
    assert engine_settings.read() == {"project_root": ROOT, "python": os.path.abspath(sys.executable)}
    monkeypatch.setattr(jobs, "find_project_root", lambda start=None: None)   # an installed extension
    root, python, how = jobs.locate_engine()
    assert root == ROOT and python == os.path.abspath(sys.executable) and "install_deps" in how
    path.write_text('{"project_root": "/nowhere", "python": "/nowhere/python"}')
    assert engine_settings.read() == {} and jobs.locate_engine()[0] is None   # stale entries ignored


def test_install_deps_dry_run_says_where_it_records_the_engine(tmp_path, monkeypatch, capsys):
    import install_deps
    monkeypatch.setenv(engine_settings.ENV, str(tmp_path / "engine.json"))
    install_deps.record_engine(sys.executable, dry_run=True)
    assert "engine.json" in capsys.readouterr().out and not (tmp_path / "engine.json").exists()
    install_deps.record_engine(sys.executable, dry_run=False)
    assert engine_settings.read(str(tmp_path / "engine.json"))["project_root"] == ROOT


@pytest.mark.blender
def test_convert_from_a_script_runs_synchronously(bpy_factory, tmp_path, monkeypatch, capfd):
    bpy = bpy_factory
    import blender_mocap_addon as addon
    from blender_mocap_addon.ui import prefs
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PY.format(python=sys.executable, root=ROOT))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded by the fake")
    monkeypatch.setattr(prefs, "resolve_paths", lambda context=None: (str(fake), ROOT))
    addon.register()
    try:
        s = bpy.context.scene.mocap
        with pytest.raises(RuntimeError, match="video not found"):        # says what is wrong
            bpy.ops.mocap.convert()
        s.video_path = str(video)
        s.pose_path = str(tmp_path / "out" / "clip.npz")
        assert bpy.ops.mocap.convert() == {'FINISHED'}                   # EXEC: no window, no modal
        assert {"Mocap_P1", "Mocap_P4"} <= set(bpy.data.objects.keys())
        assert "Mocap: " in capfd.readouterr().out                       # progress printed
        assert os.path.isfile(tmp_path / "out" / "clip.npz")
    finally:
        addon.unregister()
