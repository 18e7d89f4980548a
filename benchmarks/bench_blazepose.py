"""MediaPipe BlazePose-full on a video, as one whole process: the reference that issue 31 compares with.

    /tmp/bp-venv/bin/python benchmarks/bench_blazepose.py VIDEO [--threads 2] [--frames N]

Run it with a Python that has mediapipe (0.10.14: its wheel ships the BlazePose models,
pose_detection.tflite and pose_landmark_full.tflite, under mediapipe/modules) in a separate
virtual environment: mediapipe is never a dependency of this project, and this script imports
nothing of it. ``benchmarks/bench_runtime.py --blazepose-python PYTHON`` runs it in turn with the
engine. It reads every frame with OpenCV, runs the tracking pose solution (model_complexity=1 =
BlazePose-full; one person, landmarks tracked from frame to frame as in its video mode), and prints
`frames N with_pose M seconds S` as its last line.
"""
import argparse
import os
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("--threads", type=int, default=2,
                    help="accepted for symmetry with the engine's benchmarks; mediapipe's pose solution "
                         "chooses its own TFLite/XNNPACK threads (recorded as is)")
    ap.add_argument("--frames", type=int, default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        print(f"error: cannot open {args.video}", file=sys.stderr)
        return 1
    n = found = 0
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True) as pose:
        while args.frames is None or n < args.frames:
            ok, frame = cap.read()
            if not ok:
                break
            result = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            n += 1
            found += result.pose_landmarks is not None
    cap.release()
    print(f"frames {n} with_pose {found} seconds {time.perf_counter() - t0:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
