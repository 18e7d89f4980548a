"""The modal Convert operator in a real Blender UI (Blender under Xvfb), with a fake inference.

Needs the ``blender`` executable and ``xvfb-run`` (Debian: apt-get install blender
python3-numpy xvfb xauth); skipped otherwise.  Marked slow (~15 s per case).
"""
import json
import os
import shutil
import stat
import subprocess

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.blender,
              pytest.mark.skipif(shutil.which("blender") is None or shutil.which("xvfb-run") is None,
                                 reason="needs blender and xvfb-run")]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE_PY = r'''#!/bin/sh
# stands in for "PYTHON -m inference VIDEO -o OUT ...": JSON-lines progress, then a pose file
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
exec {python} -c '
import json, sys, time
sys.path.insert(0, "{root}")
out, mode = sys.argv[1], sys.argv[2]
n = 20
for i in range(n):
    print(json.dumps({{"frame": i, "total": n, "fps": 10.0, "eta": (n - i) * 0.1}}), flush=True)
    time.sleep(0.05 if mode == "ok" else 0.5)
import posefile
from blender_mocap_addon.core import synthetic
posefile.write_posefile(out, **synthetic.pose_arrays(2, 15))
print(json.dumps({{"frame": n, "total": n, "done": True, "output": out, "people": 2, "warnings": []}}), flush=True)
' "$out" "$FAKE_MODE"
'''

DRIVE = r'''
import json, os, sys
sys.path.insert(0, "{root}")
import bpy, addon_utils
addon_utils.enable("blender_mocap_addon", default_set=True)
from blender_mocap_addon.ui import operators, prefs
mode = os.environ["FAKE_MODE"]
def snap():
    return [sorted(bpy.data.objects.keys()), sorted(bpy.data.actions.keys()),
            bpy.context.scene.frame_start, bpy.context.scene.frame_end]
before = snap()
prefs.get_prefs().python_path = {fake!r}
s = bpy.context.scene.mocap
s.video_path = {video!r}
s.pose_path = {out!r}
log = {{"progress": []}}
state = {{"ticks": 0, "started": False}}
def start():
    win = bpy.context.window_manager.windows[0]
    area = [a for a in win.screen.areas if a.type == "VIEW_3D"][0]
    with bpy.context.temp_override(window=win, area=area, screen=win.screen):
        log["invoke"] = sorted(bpy.ops.mocap.convert("INVOKE_DEFAULT"))
    state["started"] = True
def watch():
    state["ticks"] += 1
    run = operators.MOCAP_OT_convert.running
    if run is not None:
        log["progress"].append(s.job_progress)
        if mode == "cancel" and s.job_progress > 0.2:
            run.request_cancel()
    elif state["started"] or state["ticks"] > 300:
        log["unchanged"] = snap() == before
        log["objects"] = snap()[0]
        log["out_exists"] = os.path.exists({out!r})
        log["part_left"] = [f for f in os.listdir(os.path.dirname({out!r})) if f.endswith(".part.npz")]
        print("RESULT " + json.dumps(log), flush=True)
        bpy.ops.wm.quit_blender()
        return None
    return 0.1
bpy.app.timers.register(start, first_interval=1.0)
bpy.app.timers.register(watch, first_interval=1.2)
'''


def run_gui(tmp_path, mode):
    import sys
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PY.format(python=sys.executable, root=ROOT))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded by the fake")
    out = tmp_path / "out" / "clip_mocap.npz"
    out.parent.mkdir()
    drive = tmp_path / "drive.py"
    drive.write_text(DRIVE.format(root=ROOT, fake=str(fake), video=str(video), out=str(out)))
    env = dict(os.environ, FAKE_MODE=mode, BLENDER_USER_RESOURCES=str(tmp_path / "bur"))
    r = subprocess.run(["xvfb-run", "-a", "blender", "--factory-startup", "--python", str(drive)],
                       env=env, capture_output=True, text=True, timeout=300)
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, (r.stdout[-3000:], r.stderr[-3000:])
    return json.loads(line[-1][len("RESULT "):])


def test_modal_convert_imports_when_done(tmp_path):
    res = run_gui(tmp_path, "ok")
    assert res["invoke"] == ["RUNNING_MODAL"]
    assert {"Mocap_P1", "Mocap_P4"} <= set(res["objects"]) and res["out_exists"]
    assert res["part_left"] == []


def test_modal_convert_cancel_leaves_scene_unchanged(tmp_path):
    res = run_gui(tmp_path, "cancel")
    assert res["invoke"] == ["RUNNING_MODAL"]
    assert max(res["progress"]) > 0.2                  # it was running, with progress shown
    assert res["unchanged"] and not res["out_exists"] and res["part_left"] == []
