"""The face mesh under the drawn features, its shading, the photo backgrounds and the camera effects."""

from dataclasses import replace

import cv2
import numpy as np

from landmarkflow.data.synthetic import FaceSpec, render_face
from landmarkflow.data.synthetic.face3d import TEMPLATE_68, Expression, Hair, Identity, Pose, build_face
from landmarkflow.data.synthetic.face_mesh import face_mesh, reshape
from landmarkflow.data.synthetic.params import Appearance, Camera, Lighting
from landmarkflow.data.synthetic.photos import PHOTOS, photo, photo_background
from landmarkflow.data.synthetic.shading import shade


def test_the_packaged_mesh_is_mediapipes_canonical_face_on_the_template() -> None:
    mesh = face_mesh()
    assert mesh.vertices.shape == (468, 3) and mesh.triangles.shape == (898, 3)
    assert len(set(mesh.anchors.tolist())) == 68
    offsets = np.linalg.norm(mesh.vertices[mesh.anchors, :2] - TEMPLATE_68[:, :2], axis=1)
    assert offsets[17:].max() < 0.07 and offsets[:17].max() < 0.13  # features close; the jaw on the mesh's rim
    assert mesh.occlusion.min() > 0.5 and np.median(mesh.occlusion) > 0.95


def test_reshaping_puts_the_anchors_exactly_on_the_landmarks_and_moves_the_rest_smoothly() -> None:
    mesh = face_mesh()
    np.testing.assert_allclose(reshape(mesh, mesh.vertices[mesh.anchors]), mesh.vertices, atol=1e-9)
    target = mesh.vertices[mesh.anchors] + np.array([0.1, -0.05, 0.02])  # a shift moves everything alike
    np.testing.assert_allclose(reshape(mesh, target), mesh.vertices + np.array([0.1, -0.05, 0.02]), atol=1e-9)
    wide = mesh.vertices[mesh.anchors] * np.array([1.2, 1.0, 1.0])
    moved = reshape(mesh, wide)
    np.testing.assert_allclose(moved[mesh.anchors], wide, atol=1e-9)
    np.testing.assert_allclose(moved[:, 0], mesh.vertices[:, 0] * 1.2, atol=1e-9)  # linear maps are reproduced


def test_the_posed_surface_projects_its_anchors_onto_the_inner_landmarks() -> None:
    geo = build_face(Identity(), Expression(mouth_open=0.6, smile=0.4), Pose(yaw=30, pitch=-10, roll=12), Hair())
    anchors = geo.surface.points[face_mesh().anchors]
    np.testing.assert_allclose(anchors[17:], geo.landmarks[17:], atol=1e-9)
    assert geo.surface.normals[:, 2].mean() > 0.5  # the face looks at the camera, more or less


def _shading(angle: float, yaw: float = 0.0, **light: float):
    face = build_face(Identity(), Expression(), Pose(yaw=yaw), Hair()).transformed(60.0, np.array([128.0, 100.0]))
    lighting = Lighting(angle=angle, strength=0.5, ambient=1.0, elevation=20.0, **light)
    return face, shade(face.surface, Appearance(), lighting, 256, face.units_per_face)


def test_a_light_from_the_right_lights_the_right_cheek() -> None:
    face, lit = _shading(0.0)
    gain = lit.factor.mean(axis=2)
    row = int(face.landmarks[30, 1])
    left, right = int(face.landmarks[3, 0] + 10), int(face.landmarks[13, 0] - 10)
    assert gain[row, right] > gain[row, left] + 0.3
    _, from_left = _shading(180.0)
    mirrored = from_left.factor.mean(axis=2)
    assert mirrored[row, left] > mirrored[row, right] + 0.3
    assert lit.coverage[5, 5] == 0 and lit.coverage[row, 128] > 0.99


def test_highlights_follow_the_shininess() -> None:
    _, dull = _shading(90.0, specular=0.0)
    _, shiny = _shading(90.0, specular=0.4, shininess=10.0)
    assert dull.highlight.max() == 0 and shiny.highlight.max() > 0.2


def test_a_sharp_highlight_on_a_turned_cheek_is_smooth_not_a_lattice_of_vertices() -> None:
    """With a blur narrower than the cheek's vertex spacing (shading.SMOOTH 0.04), a shininess-40 highlight was a
    grid of dots (27 local maxima here, one per vertex); now it is a few smooth blobs."""
    _, lit = _shading(170.0, yaw=40.0, specular=0.35, shininess=40.0)
    shine = lit.highlight
    peaks = (shine == cv2.dilate(shine, np.ones((3, 3), np.uint8))) & (shine > 0.1 * shine.max())
    assert shine.max() > 0.2 and peaks.sum() < 12


def test_photo_backgrounds_are_deterministic_and_faceless_samples() -> None:
    assert not {"astronaut.png", "camera.png"} & set(PHOTOS)
    for name in PHOTOS:
        assert photo(name).ndim == 3
    first = photo_background(np.random.default_rng(4), 96)
    np.testing.assert_array_equal(first, photo_background(np.random.default_rng(4), 96))
    assert first.shape == (96, 96, 3) and first.std() > 5
    assert not np.array_equal(first, photo_background(np.random.default_rng(5), 96))


def test_camera_effects_change_only_when_asked() -> None:
    spec = FaceSpec(camera=Camera())
    clean = render_face(spec, 128).image
    np.testing.assert_array_equal(clean, render_face(spec, 128).image)
    jpeg = render_face(replace(spec, camera=Camera(jpeg_quality=20)), 128).image
    decoded = cv2.imdecode(cv2.imencode(".jpg", clean, [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(jpeg, decoded)
    dark = render_face(replace(spec, camera=Camera(gamma=2.0)), 128).image
    assert dark.mean() < clean.mean() - 10
    warm = render_face(replace(spec, camera=Camera(white_balance=(0.8, 1.0, 1.2))), 128).image.astype(float)
    assert warm[..., 2].mean() > clean[..., 2].mean() + 5 and warm[..., 0].mean() < clean[..., 0].mean() - 5
