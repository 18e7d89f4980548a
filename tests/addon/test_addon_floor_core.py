"""Floor and foot locking maths of the add-on (pure numpy, no bpy): world transforms, the
camera in the world, feet on the floor, foot locking, root motion scaled about the floor."""
import numpy as np
import pytest

from blender_mocap_addon.core import axes, floor, foot_lock as fk, motion, retarget as rt, skeleton as sk, synthetic
from blender_mocap_addon.core.contract import posefile

JN = posefile.JOINT_NAMES
ANK = [JN.index("r_ankle"), JN.index("l_ankle")]


def noisy_walker(F=150, seed=1, jitter=0.01, drift=0.004):
    """A walker with known contacts, seen through noise: per-joint jitter (m) and a random-walk
    drift of the whole body (m per frame), as depth and lateral errors make feet slide."""
    j, c = synthetic.walker_world(F, seed=seed)
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, drift, (F, 3)), 0)
    return j, j + walk[:, None, :] + rng.normal(0, jitter, j.shape), c


# --------------------------------------------------------------------------- world frame
def test_camera_matrix_world_without_floor_is_the_old_camera():
    M = floor.camera_matrix_world(None)
    c, s = np.cos(axes.BLENDER_CAMERA_EULER[0]), np.sin(axes.BLENDER_CAMERA_EULER[0])
    assert np.allclose(M[:3, :3], [[1, 0, 0], [0, c, -s], [0, s, c]], atol=1e-12)
    assert np.allclose(floor.camera_to_world(np.array([[0.3, -0.2, 4.0]])), [[0.3, 4.0, 0.2]])


def test_camera_in_world_sees_what_the_opencv_camera_saw():
    T = synthetic.look_at_floor(1.7, pitch_deg=15.0, roll_deg=3.0)
    assert floor.camera_height_tilt(T) == pytest.approx(
        {"camera_height_m": 1.7, "pitch_deg": 15.0, "roll_deg": 3.0}, abs=1e-9)
    M = floor.camera_matrix_world(T)
    p_cam = np.array([0.4, 0.3, 5.0])                      # a point in front of the camera
    p_world = floor.camera_to_world(p_cam, T)
    # in the Blender camera's own axes (-Z forward, +Y up) the point is at (x, -y, -z)
    local = np.linalg.inv(M) @ np.append(p_world, 1.0)
    assert np.allclose(local[:3], [0.4, -0.3, -5.0], atol=1e-12)
    assert np.allclose(M[:3, 3], [0, 0, 1.7])


def test_check_world_from_camera_rejects_a_non_rigid_matrix():
    T = synthetic.look_at_floor()
    T[:3, :3] *= 1.1
    with pytest.raises(floor.FloorError, match="rigid"):
        floor.check_world_from_camera(T)


def test_floor_info_says_why_there_is_no_floor():
    assert floor.floor_info({}, False)[0] is False
    assert "no floor in the pose file" in floor.floor_info({}, False)[1]
    use, note = floor.floor_info({"floor": {"status": "moving_camera"}}, False)
    assert not use and "camera moves" in note
    use, note = floor.floor_info({"floor": {"status": "estimated", "camera_height_m": 1.62,
                                            "pitch_deg": 9.5}}, True)
    assert use and "1.62 m" in note and "+9.5" in note
    assert floor.ankle_height({"floor": {"status": "estimated", "ankle_height_m": 0.09}}) == 0.09
    assert floor.ankle_height({"floor": {"status": "estimated", "ankle_height_m": 3.0}}) == 0.0   # not believed
    assert floor.ankle_height({}) == 0.0


def test_contact_height_from_contacts_or_the_lower_foot():
    z = np.array([[0.03, 0.20], [0.031, 0.1], [0.2, 0.029], [0.3, 0.03]])
    c = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], bool)
    assert floor.contact_height(z, c) == pytest.approx(0.03)
    assert floor.contact_height(z, None) == pytest.approx(np.percentile([0.03, 0.031, 0.029, 0.03], 10))


def test_solve_in_world_frame_puts_feet_on_the_floor():
    """Camera-frame joints + world_from_camera -> the true world joints; a person floating
    5 cm (the engine's per-person error) is put back on the floor."""
    j, c = synthetic.walker_world(90, seed=3)
    T = synthetic.look_at_floor(1.5, 10.0, -2.0)
    lifted = j + [0, 0, 0.05]
    cam = (lifted - T[:3, 3]) @ T[:3, :3]                 # world -> camera (R^T (p - t))
    m = motion.solve_person(cam, np.ones(90, bool), JN, world_from_camera=T, contacts=c,
                            feet_on_floor=True)
    assert m.floor_shift == pytest.approx(-0.05, abs=1e-6) and m.floor_z == 0.0
    assert np.allclose(m.joints_world, j, atol=1e-9)
    z = m.joints_world[:, ANK, 2]
    assert np.abs(z[c]).max() < 1e-9
    # with the engine's ankle height the contact ankles stand that high above the floor
    m = motion.solve_person(cam, np.ones(90, bool), JN, world_from_camera=T, contacts=c,
                            feet_on_floor=True, ankle_height=0.09, lock_feet=True)
    assert m.floor_z == 0.09 and m.floor_shift == pytest.approx(0.04, abs=1e-6)
    assert np.abs(m.joints_world[:, ANK, 2][c] - 0.09).max() < 1e-9


# --------------------------------------------------------------------------- foot locking
def test_foot_lock_keeps_contact_feet_still():
    truth, noisy, c = noisy_walker()
    lengths = sk.median_bone_lengths(noisy, np.ones(len(noisy), bool), JN)
    before = fk.foot_slide(noisy[:, ANK], c)
    r = fk.lock_feet(noisy, c, lengths, JN, floor_z=0.0)
    j = r.joints
    assert before > 0.01                                       # 1 cm per frame of sliding before
    assert fk.foot_slide(j[:, ANK], c) < 1e-9
    for k in range(2):
        assert len(r.intervals[k]) >= 4
        for s, e in r.intervals[k]:
            pin = j[s:e + 1, ANK[k]]
            assert np.abs(pin - pin[0]).max() < 1e-3          # still to 1 mm (in fact ~1e-15)
            assert np.abs(pin[:, 2]).max() < 1e-9             # on the floor
    # bone lengths are the armature's, exactly
    L = np.linalg.norm(sk.bone_vectors(j, JN), axis=-1)
    assert np.abs(L - lengths).max() < 1e-9
    # the upper body moved only with the root: arms keep their pose relative to the pelvis
    pel = JN.index("pelvis")
    for name in ("l_wrist", "head_top", "r_elbow"):
        i = JN.index(name)
        conf = fk.conform_lengths(noisy, lengths, JN)
        assert np.allclose(j[:, i] - j[:, pel], conf[:, i] - conf[:, pel], atol=1e-9)
    # the locked motion is closer to the truth than the noisy one (drift removed by the pins)
    err = lambda a: np.linalg.norm(a[:, ANK] - truth[:, ANK], axis=-1)[c].mean()   # noqa: E731
    assert err(j) < 0.5 * err(noisy)


def test_foot_lock_blends_smoothly_out_of_contacts():
    _, noisy, c = noisy_walker(seed=2)
    lengths = sk.median_bone_lengths(noisy, np.ones(len(noisy), bool), JN)
    r = fk.lock_feet(noisy, c, lengths, JN, floor_z=0.0)
    conf = fk.conform_lengths(noisy, lengths, JN)
    # no new jumps: the locked ankles and pelvis move no faster than the noisy input's
    step = lambda j, idx: np.linalg.norm(np.diff(j[:, idx], axis=0), axis=-1).max()   # noqa: E731
    assert step(r.joints, ANK) <= step(conf, ANK)
    pel = JN.index("pelvis")
    assert step(r.joints, [pel]) <= step(conf, [pel])


def test_contact_intervals_split_at_gaps_and_out_of_reach_pins_move_the_body():
    assert fk.intervals(np.array([1, 1, 0, 1, 1, 1], bool), np.array([0, 1, 2, 3, 7, 8])) == \
        [(0, 1), (3, 3), (4, 5)]
    # standing with the left foot on a 35 cm step that the contacts call floor: pinning it at
    # z = 0 pulls the body down further than the right leg reaches, so the body moves more
    j, _ = synthetic.walker_world(30, seed=4)
    j = np.repeat(j[:1], 30, 0)
    j[:, JN.index("l_knee")] += [0, -0.15, 0.2]
    j[:, JN.index("l_ankle")] += [0, 0, 0.35]
    lengths = sk.median_bone_lengths(j, np.ones(30, bool), JN)
    r = fk.lock_feet(j, np.ones((30, 2), bool), lengths, JN, floor_z=0.0)
    assert r.unreachable == 30 and "out of the leg's reach" in r.notes[0]
    assert np.abs(r.joints[:, ANK, 2]).max() < 1e-6                    # both feet on the floor
    L = np.linalg.norm(sk.bone_vectors(r.joints, JN), axis=-1)
    assert np.abs(L - lengths).max() < 1e-9


def test_solve_person_with_foot_lock_keys_still_feet():
    """The armature's ankles (FK of the solved rotations with the median lengths) stay put."""
    _, noisy, c = noisy_walker(F=120, seed=5)
    T = synthetic.look_at_floor()
    cam = (noisy - T[:3, 3]) @ T[:3, :3]
    m = motion.solve_person(cam, np.ones(120, bool), JN, world_from_camera=T, contacts=c,
                            feet_on_floor=True, lock_feet=True)
    pos = sk.forward_kinematics(m.world_rot, m.root_world, m.rest)
    ank = np.stack([pos["r_ankle"], pos["l_ankle"]], 1)
    assert fk.foot_slide(ank, c) < 1e-6
    assert np.abs(ank[..., 2][c]).max() < 1e-6


# --------------------------------------------------------------------------- retarget about the floor
def test_root_motion_is_scaled_about_the_floor():
    """A source in camera coordinates (its floor 1.4 m below the origin) onto a rig 1.1x
    bigger whose ankles stand 8 cm above its floor: in contact frames the rig's root is at
    its leg length above its ankle level, so its feet are on its floor."""
    j, c = synthetic.walker_world(60, seed=6)
    j = j + [0.0, 0.0, -1.4]
    m = motion.solve_person(axes.blender_to_cam(j), np.ones(60, bool), JN)
    assert m.floor_z == pytest.approx(-1.4, abs=1e-6)
    dirs = np.array([b.rest_dir for b in sk.BONES], float)
    src = rt.SourceMotion(names=list(sk.BONE_NAMES), world_rot=m.world_rot, rest_dirs=dirs,
                          root_world=m.root_world, rest_root=m.rest.root_head,
                          hip_height=float(m.rest.root_head[2]), floor_z=m.floor_z)
    rest = sk.rest_skeleton(m.rest.lengths * 1.1)
    heads, tails = rest.heads + [0, 0, 0.08], rest.tails + [0, 0, 0.08]
    heads = np.vstack([heads, [[0.1, 0, 0.08]]])              # a "foot" bone down to the floor
    tails = np.vstack([tails, [[0.1, -0.12, 0.0]]])
    names = list(sk.BONE_NAMES) + ["foot.L"]
    parents = np.append(sk.bone_parents(), sk.BONE_NAMES.index("shin.L"))
    frames = np.concatenate([rest.frames, np.eye(3)[None]])
    tgt = rt.TargetRig(names=names, parents=parents, rest_rot=frames, heads=heads, tails=tails)
    res = rt.retarget(src, tgt, {n: n for n in sk.BONE_NAMES}, "spine")
    assert res.scale == pytest.approx(1.1)
    head = heads[0] + res.root_location @ frames[0].T
    Wt = rt.rot.world_from_local(rt.rot.matrix_from_quat(res.local_quat), parents, frames)
    # target ankles by FK: root + hip + thigh + shin, each rest vector turned by its rotation
    for side in ("L", "R"):
        p = head.copy()
        for b in (f"hip.{side}", f"thigh.{side}", f"shin.{side}"):
            i = names.index(b)
            p = p + np.einsum("fij,jk,k->fi", Wt[:, i], frames[i], [0, np.linalg.norm(tails[i] - heads[i]), 0])
        k = 0 if side == "R" else 1
        assert np.abs(p[c[:, k], 2] - 0.08).max() < 0.01, side
