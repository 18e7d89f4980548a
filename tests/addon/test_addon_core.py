"""Pure-numpy tests of the add-on core (no bpy)."""
import json

import numpy as np
import pytest

from blender_mocap_addon.core import axes, bonemap as bm, motion, retarget as rt
import posefile
from blender_mocap_addon.core import rotations as rot, skeleton as sk, synthetic

JN = posefile.JOINT_NAMES


def _angle(qa, qb):
    """Rotation angle between unit quaternions (radians), (..., 4) -> (...)."""
    d = np.clip(np.abs(np.sum(qa * qb, -1)), 0, 1)
    return 2 * np.arccos(d)


# --------------------------------------------------------------------------- axes
def test_axes_roundtrip_and_handedness():
    p = np.random.default_rng(0).normal(size=(5, 16, 3))
    b = axes.cam_to_blender(p)
    assert np.allclose(b[..., 0], p[..., 0]) and np.allclose(b[..., 1], p[..., 2])
    assert np.allclose(b[..., 2], -p[..., 1])
    assert np.allclose(axes.blender_to_cam(b), p)
    assert np.isclose(np.linalg.det(axes.CAM_TO_BLENDER), 1.0)
    assert np.allclose(axes.CAM_TO_BLENDER @ p[0, 0], b[0, 0])


def test_blender_camera_looks_along_plus_y():
    rx = axes.BLENDER_CAMERA_EULER[0]
    R = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    assert np.allclose(R @ [0, 0, -1], [0, 1, 0])     # view direction
    assert np.allclose(R @ [0, 1, 0], [0, 0, 1])      # up


def test_camera_lens_from_K():
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    c = axes.camera_lens_from_K(K, (1280, 720))
    assert c["lens"] == pytest.approx(1000 / 1280 * 36)
    assert c["shift_x"] == pytest.approx(0) and c["shift_y"] == pytest.approx(0)
    K[0, 2] = 600          # principal point left of centre: frustum centre is to the right
    assert axes.camera_lens_from_K(K, (1280, 720))["shift_x"] == pytest.approx(40 / 1280)


# --------------------------------------------------------------------------- rotations
def test_quaternion_matrix_roundtrip_including_half_turns():
    rng = np.random.default_rng(1)
    q = rot.normalize_quat(rng.normal(size=(2000, 4)))
    q[:20, 0] = 0                                   # half turns (w = 0)
    q = rot.normalize_quat(q)
    R = rot.matrix_from_quat(q)
    q2 = rot.quat_from_matrix(R)
    assert np.all(q2[:, 0] >= 0)
    assert np.allclose(rot.matrix_from_quat(q2), R, atol=1e-12)
    assert np.allclose(np.abs(np.sum(q * q2, -1)), 1, atol=1e-12)


def test_rotation_between_and_mm():
    rng = np.random.default_rng(2)
    a = rot.normalize(rng.normal(size=(500, 3)))
    b = rot.normalize(rng.normal(size=(500, 3)))
    b[0] = -a[0]                                    # opposite vectors
    R = rot.rotation_between(a, b)
    assert np.allclose(np.einsum("nij,nj->ni", R, a), b, atol=1e-9)
    assert np.allclose(np.linalg.det(R), 1)
    A, B = rng.normal(size=(7, 3, 3)), rng.normal(size=(7, 3, 3))
    assert np.allclose(rot.mm(A, B), A @ B) and np.allclose(rot.mm(A, B[0]), A @ B[0])
    assert np.allclose(rot.mm(A[0], B), A[0] @ B)


def test_sign_continuity():
    rng = np.random.default_rng(3)
    q = rot.normalize_quat(rng.normal(size=(50, 4)) * 0.01 + [1, 0, 0, 0])
    q[::3] *= -1
    c = rot.make_sign_continuous(q)
    assert np.all(np.sum(c[1:] * c[:-1], -1) > 0)
    assert np.allclose(np.abs(c), np.abs(q))


# --------------------------------------------------------------------------- skeleton / solve
def test_rest_skeleton_from_median_lengths():
    jw, _, lengths = synthetic.person_world(60, seed=4)
    noisy = jw + np.random.default_rng(4).normal(scale=0.002, size=jw.shape)
    valid = np.ones(60, bool)
    valid[10:20] = False
    noisy[10:20] = 99.0                            # garbage where not valid
    med = sk.median_bone_lengths(noisy, valid, JN)
    assert np.allclose(med, lengths, atol=0.003)
    rest = sk.rest_skeleton(lengths)
    assert rest.heads[:, 2].min() >= -1e-9 and min(rest.tails[:, 2].min(), 1) == pytest.approx(0, abs=1e-9)
    assert np.allclose(np.linalg.norm(rest.tails - rest.heads, axis=1), lengths)
    assert np.allclose(np.einsum("bij,bik->bjk", rest.frames, rest.frames), np.eye(3))


def test_solve_reproduces_joints_exactly():
    jw, _, _ = synthetic.person_world(200, seed=5)
    m = motion.solve_person(axes.blender_to_cam(jw), np.ones(200, bool), JN)
    pos = sk.forward_kinematics(m.world_rot, m.root_world, m.rest)
    err = max(np.abs(pos[n] - jw[:, i]).max() for i, n in enumerate(JN))
    assert err < 1e-9
    # local quaternions rebuild the same world rotations
    W = rot.world_from_local(rot.matrix_from_quat(m.local_quat), sk.bone_parents(), m.rest.frames)
    assert np.allclose(W, m.world_rot, atol=1e-7)
    # and the fast path agrees with the plain one
    L = rot.local_rotations(m.world_rot, sk.bone_parents(), m.rest.frames)
    assert np.allclose(rot.matrix_from_quat(m.local_quat), L, atol=1e-9)


def test_solution_is_smooth_and_sign_continuous():
    # 10 s sampled at 120 fps: true motion turns a bone by < 5 degrees per frame,
    # so anything bigger would be a roll flip.  Includes a full turn about Z.
    F = 1200
    jw, _, _ = synthetic.person_world(F, seed=6, fps=120.0)
    m = motion.solve_person(axes.blender_to_cam(jw), np.ones(F, bool), JN)
    q = m.local_quat
    assert np.all(np.sum(q[1:] * q[:-1], -1) >= 0)
    step = _angle(q[1:], q[:-1])                       # (F-1, B) radians per frame
    assert np.degrees(step.max()) < 8, np.degrees(step.max(axis=0))


def test_straight_arm_twist_does_not_flip():
    """A straight arm swinging through the vertical keeps a continuous roll."""
    F = 120
    jw, _, lengths = synthetic.person_world(F, seed=7)
    jw = np.repeat(jw[:1], F, 0)
    ji = {n: i for i, n in enumerate(JN)}
    sh = jw[0, ji["l_shoulder"]]
    ang = np.linspace(-1.4, 1.4, F)                    # from down-ish through horizontal to up-ish
    d = np.stack([np.cos(ang), 0.1 * np.ones(F), np.sin(ang)], 1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    ua, fa = lengths[sk.BONE_NAMES.index("upper_arm.L")], lengths[sk.BONE_NAMES.index("forearm.L")]
    jw[:, ji["l_elbow"]] = sh + ua * d
    jw[:, ji["l_wrist"]] = sh + (ua + fa) * d
    m = motion.solve_person(axes.blender_to_cam(jw), np.ones(F, bool), JN)
    b = sk.BONE_NAMES.index("upper_arm.L")
    W = m.world_rot[:, b]
    step = np.degrees(_angle(rot.quat_from_matrix(W[1:]), rot.quat_from_matrix(W[:-1])))
    assert step.max() < 5, step.max()


def test_invalid_frames_are_skipped_and_reported():
    arr = synthetic.pose_arrays(1, 40, gaps=True)
    valid = arr["valid"][0]
    m = motion.solve_person(arr["joints3d"][0], valid, JN)
    assert np.array_equal(m.frames, np.flatnonzero(valid))
    valid2 = valid.copy()
    j = arr["joints3d"][0].copy()
    j[2, 3, 0] = np.nan                                # a NaN in a frame marked valid
    m2 = motion.solve_person(j, valid2, JN)
    assert 2 not in m2.frames and m2.warnings
    with pytest.raises(ValueError):
        motion.solve_person(j, np.zeros(40, bool), JN)


def test_smoothing_reduces_jitter_and_keeps_constants():
    rng = np.random.default_rng(8)
    x = np.sin(np.linspace(0, 3, 200))[:, None] + rng.normal(scale=0.05, size=(200, 1))
    valid = np.ones(200, bool)
    valid[100:110] = False
    y = motion.smooth_tracks(x, valid, 2.0)
    jit = lambda a: np.abs(np.diff(a[:100], 2, axis=0)).mean()
    assert jit(y) < 0.3 * jit(x)
    c = np.full((50, 3), 2.5)
    assert np.allclose(motion.smooth_tracks(c, np.ones(50, bool), 3.0), 2.5)


# --------------------------------------------------------------------------- bone maps
MIXAMO = ["mixamorig:" + n for n in (
    "Hips Spine Spine1 Spine2 Neck Head LeftShoulder LeftArm LeftForeArm LeftHand RightShoulder "
    "RightArm RightForeArm RightHand LeftUpLeg LeftLeg LeftFoot RightUpLeg RightLeg RightFoot").split()]
METARIG = ("spine spine.001 spine.002 spine.003 spine.004 spine.005 spine.006 shoulder.L upper_arm.L "
           "forearm.L hand.L shoulder.R upper_arm.R forearm.R hand.R pelvis.L pelvis.R thigh.L shin.L "
           "foot.L thigh.R shin.R foot.R").split()


def test_presets_cover_their_rigs():
    assert bm.preset("MIXAMO").missing(MIXAMO) == []
    assert bm.preset("RIGIFY_METARIG").missing(METARIG) == []
    assert bm.preset("RIGIFY_DEF").missing(["DEF-" + n for n in METARIG]) == []
    assert bm.best_map(MIXAMO).name == "Mixamo"
    assert bm.best_map(METARIG).name == "Rigify metarig"
    assert bm.best_map(list(sk.BONE_NAMES)).bones == {n: n for n in sk.BONE_NAMES}
    with pytest.raises(bm.BoneMapError):
        bm.preset("NOPE")


def test_generic_name_matching():
    assert bm.generic_match(MIXAMO).bones == bm.preset("MIXAMO").bones
    ue = ("root pelvis spine_01 spine_02 neck_01 head clavicle_l upperarm_l lowerarm_l hand_l "
          "clavicle_r upperarm_r lowerarm_r thigh_l calf_l thigh_r calf_r").split()
    g = bm.generic_match(ue)
    assert g.bones["spine"] == "pelvis" and g.root == "pelvis"
    assert g.bones["forearm.L"] == "lowerarm_l" and g.bones["shin.R"] == "calf_r"
    assert g.bones["shoulder.R"] == "clavicle_r" and g.bones["neck"] == "neck_01"
    d = bm.generic_match(["DEF-" + n for n in METARIG] + ["DEF-thigh.L.001", "DEF-upper_arm.L.001"])
    assert d.bones["thigh.L"] == "DEF-thigh.L" and d.bones["upper_arm.L"] == "DEF-upper_arm.L"
    assert bm.split_name("skull")[1] is None          # no false side from a trailing "l"


def test_bonemap_json_roundtrip_and_errors(tmp_path):
    m = bm.preset("MIXAMO")
    p = tmp_path / "m.json"
    bm.save_json(str(p), m)
    m2 = bm.load_json(str(p))
    assert m2.bones == m.bones and m2.root == m.root
    assert bm.list_user_presets(str(tmp_path)) == [("m", str(p))]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "video-mocap-bonemap", "version": 1, "bones": {"tail": "x"}}))
    with pytest.raises(bm.BoneMapError, match="unknown mocap bones"):
        bm.load_json(str(bad))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(bm.BoneMapError):
        bm.load_json(str(tmp_path / "junk.json"))


# --------------------------------------------------------------------------- retarget maths
def _source(F=40, seed=9):
    jw, _, _ = synthetic.person_world(F, seed=seed)
    m = motion.solve_person(axes.blender_to_cam(jw), np.ones(F, bool), JN)
    dirs = np.array([b.rest_dir for b in sk.BONES], float)
    return m, rt.SourceMotion(names=list(sk.BONE_NAMES), world_rot=m.world_rot, rest_dirs=dirs,
                              root_world=m.root_world, rest_root=m.rest.root_head,
                              hip_height=float(m.rest.root_head[2]))


def test_retarget_onto_a_pose_rig_matches_directions():
    m, src = _source()
    # target: our skeleton, 1.2x bigger, arms in an A-pose (rest dirs 40 deg down)
    rest = sk.rest_skeleton(m.rest.lengths * 1.2)
    heads, tails = rest.heads.copy(), rest.tails.copy()
    frames = rest.frames.copy()
    for side, sgn in ((".L", 1), (".R", -1)):
        for bn in ("upper_arm", "forearm"):
            i = sk.BONE_NAMES.index(bn + side)
            d = np.array([sgn * np.cos(0.7), 0, -np.sin(0.7)])
            tails[i] = heads[i] + d * np.linalg.norm(tails[i] - heads[i])
            x = np.array([0, 0, 1.0]) - d * d[2]
            x /= np.linalg.norm(x)
            frames[i] = np.stack([x, d, np.cross(x, d)], 1)
            if bn == "upper_arm":
                j = sk.BONE_NAMES.index("forearm" + side)
                heads[j] = tails[i]
    M = np.eye(4)
    M[:3, 3] = (2.0, 0, 0)
    tgt = rt.TargetRig(names=list(sk.BONE_NAMES), parents=sk.bone_parents(), rest_rot=frames,
                       heads=heads, tails=tails, object_matrix=M)
    res = rt.retarget(src, tgt, {n: n for n in sk.BONE_NAMES}, "spine")
    assert "upper_arm.L" in res.aligned and res.scale == pytest.approx(1.2)
    Wt = rot.world_from_local(rot.matrix_from_quat(res.local_quat), sk.bone_parents(), frames)
    for i, b in enumerate(sk.BONES):
        d_t = np.einsum("fij,j->fi", Wt[:, i] @ frames[i], [0, 1, 0])
        d_s = np.einsum("fij,j->fi", m.world_rot[:, i], b.rest_dir)
        assert np.allclose(d_t, d_s, atol=1e-6), b.name
    # root head follows the source pelvis, scaled, in world space
    head = heads[0] + res.root_location @ frames[0].T + M[:3, 3]
    want = (M[:3, 3] + rest.root_head) + 1.2 * (m.root_world - m.rest.root_head)
    assert np.allclose(head, want, atol=1e-9)


def test_retarget_errors():
    _, src = _source(F=5)
    tgt = rt.TargetRig(names=["a"], parents=np.array([-1]), rest_rot=np.eye(3)[None],
                       heads=np.zeros((1, 3)), tails=np.array([[0, 0, 1.0]]))
    with pytest.raises(rt.RetargetError, match="no bones named"):
        rt.retarget(src, tgt, {"spine": "hips"}, None)
    with pytest.raises(rt.RetargetError, match="empty"):
        rt.retarget(src, tgt, {}, None)


def test_component_first_quaternions_match():
    rng = np.random.default_rng(12)
    q = rot.normalize_quat(rng.normal(size=(3000, 4)))
    q[:500] = rot.normalize_quat(q[:500] * [0.05, 1, 1, 1])   # big rotations: w not the largest
    q[:5, 0] = 0
    R = rot.matrix_from_quat(rot.normalize_quat(q))
    a = rot.quat_from_matrix(R)
    b = rot._quat_from_matrix_cf(R.reshape(30, 100, 3, 3).transpose(0, 2, 3, 1))   # (30, 4, 100)
    b = b.transpose(0, 2, 1).reshape(-1, 4)
    assert np.allclose(np.abs(np.sum(a * b, -1)), 1, atol=1e-12)
    assert np.allclose(rot.matrix_from_quat(b), R, atol=1e-12)
