from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from landmarkflow.data.formats.errors import FormatError
from landmarkflow.data.formats.readers import read_dataset, read_dataset_leniently
from landmarkflow.data.formats.wflw import (
    ATTRIBUTES,
    NUM_FIELDS,
    annotation_file,
    format_line,
    read_wflw,
    read_wflw_with_report,
    write_wflw,
)
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.geometry import landmark_box


def _face(image: str, index: int, split: str, seed: int, size: tuple[int, int]) -> FaceRecord:
    rng = np.random.default_rng(seed)
    points = rng.uniform(3, 50, size=(98, 2))
    flags = rng.integers(0, 2, size=len(ATTRIBUTES))
    return FaceRecord(
        sample_id=f"{image.rsplit('.', 1)[0]}#{index}",
        dataset="wflw",
        split=split,
        subsets=[name for name, flag in zip(ATTRIBUTES, flags, strict=True) if flag],
        image_path=f"WFLW_images/{image}",
        width=size[0],
        height=size[1],
        bbox=np.round(landmark_box(points)) + np.array([-2.0, -3.0, 1.0, 4.0]),
        landmarks=points,
        visible=np.ones(98, dtype=bool),
        layout="98",
    )


def _dataset(root: Path) -> list[FaceRecord]:
    """Two images with two faces each (as WFLW has), spread over both splits, and their random images."""
    specs = [
        ("0--Parade/0_Parade_marchingband_1_116.jpg", "train", (64, 72)),
        ("0--Parade/0_Parade_marchingband_1_116.jpg", "train", (64, 72)),
        ("51--Dresses/51_Dresses_wearingdress_51_377.jpg", "train", (80, 60)),
        ("37--Soccer/37_Soccer_soccer_ball_37_45.png", "test", (70, 66)),
        ("37--Soccer/37_Soccer_soccer_ball_37_45.png", "test", (70, 66)),
        ("2--Demonstration/2_Demonstration_Protesters_2_204.jpg", "test", (90, 61)),
    ]
    seen: dict[str, int] = {}
    records, images = [], {}
    rng = np.random.default_rng(7)
    for n, (image, split, size) in enumerate(specs):
        index = seen.get(image, 0)
        seen[image] = index + 1
        record = _face(image, index, split, seed=n, size=size)
        records.append(record)
        images[record.sample_id] = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    write_wflw(records, root, images=images)
    return records


def test_round_trip_is_exact_with_splits_subsets_and_faces_sharing_an_image(tmp_path: Path) -> None:
    records = _dataset(tmp_path)
    back, report = read_wflw_with_report(tmp_path)
    assert [r.sample_id for r in back] == [r.sample_id for r in records]
    for got, want in zip(back, records, strict=True):
        np.testing.assert_array_equal(got.landmarks, want.landmarks)
        np.testing.assert_array_equal(got.bbox, want.bbox)
        assert (got.split, got.subsets, got.image_path) == (want.split, want.subsets, want.image_path)
        assert (got.width, got.height, got.layout, got.dataset) == (want.width, want.height, "98", "wflw")
        assert got.visible.all()
    assert report.faces_per_split == {"train": 3, "test": 3} and report.images == 4
    assert report.files == [annotation_file("train"), annotation_file("test")]
    assert read_dataset("wflw", tmp_path)[0].sample_id == "0--Parade/0_Parade_marchingband_1_116#0"


def test_files_lie_where_the_download_puts_them_with_207_fields(tmp_path: Path) -> None:
    records = _dataset(tmp_path)
    assert (tmp_path / "WFLW_images/0--Parade/0_Parade_marchingband_1_116.jpg").is_file()
    path = tmp_path / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt"
    first = path.read_text().splitlines()[0].split()
    assert len(first) == NUM_FIELDS == 207
    assert first[-1] == "37--Soccer/37_Soccer_soccer_ball_37_45.png"
    assert [float(v) for v in first[:2]] == records[3].landmarks[0].tolist()
    assert first[196:200] == [str(int(v)) for v in records[3].bbox]  # integral boxes as the download writes them
    assert first[200:206] == ["1" if name in records[3].subsets else "0" for name in ATTRIBUTES]


def test_records_of_one_split_read_back_and_replace_an_earlier_write(tmp_path: Path) -> None:
    """A train-only dataset wrote an empty test file, which the reader refuses as a broken download."""
    records = _dataset(tmp_path)
    train = [r for r in records if r.split == "train"]
    write_wflw(train, tmp_path)
    assert not (tmp_path / annotation_file("test")).exists()
    assert [r.sample_id for r in read_wflw(tmp_path)] == [r.sample_id for r in train]


def test_a_download_written_by_hand_reads(tmp_path: Path) -> None:
    """Lines as the public files have them: 6-decimal coordinates, integer boxes, trailing spaces."""
    import cv2

    (tmp_path / "WFLW_images/1--Handshaking").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "WFLW_images/1--Handshaking/a.jpg"), np.zeros((40, 50, 3), np.uint8))
    coords = " ".join(f"{10 + k * 0.125:.6f} {20.5 + k * 0.25:.6f}" for k in range(98))
    line = f"{coords} 5 6 45 38 1 0 0 0 1 0 1--Handshaking/a.jpg \n"
    (tmp_path / annotation_file("test")).parent.mkdir(parents=True)
    (tmp_path / annotation_file("test")).write_text(line)
    (record,) = read_wflw(tmp_path)
    assert record.landmarks[1].tolist() == [10.125, 20.75] and record.bbox.tolist() == [5.0, 6.0, 45.0, 38.0]
    assert record.subsets == ("largepose", "occlusion") and (record.width, record.height) == (50, 40)
    assert record.split == "test" and record.image_path == "WFLW_images/1--Handshaking/a.jpg"


def _broken(tmp_path: Path, edit: Callable[[list[str]], list[str]]) -> Path:
    _dataset(tmp_path)
    path = tmp_path / annotation_file("train")
    lines = path.read_text().splitlines()
    fields = lines[1].split()
    lines[1] = " ".join(edit(fields))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f[:-2] + f[-1:], "expected 207 whitespace-separated fields .*found 206"),
        (lambda f: [*f, "extra"], "expected 207 .*found 208"),
        (lambda f: ["abc", *f[1:]], r"field 1 \(x0\) is 'abc'; expected a number"),
        (lambda f: [*f[:7], "nan", *f[8:]], r"field 8 \(y3\) is 'nan'; expected a finite number"),
        (lambda f: [*f[:196], "inf", *f[197:]], r"field 197 \(box x_min\) is 'inf'"),
        (lambda f: [*f[:196], "50", "10", "40", "60", *f[200:]], r"x_max <= x_min or y_max <= y_min"),
        (lambda f: [*f[:203], "2", *f[204:]], "attribute flag makeup is 2; expected 0 or 1"),
        (lambda f: [*f[:-1], "../../etc/a.jpg"], "image path '../../etc/a.jpg' must be a relative path"),
        (lambda f: [*f[:-1], "/abs/a.jpg"], "image path '/abs/a.jpg' must be a relative path"),
        (lambda f: [*f[:-1], "9--Press/missing.jpg"], "image WFLW_images/9--Press/missing.jpg does not exist"),
    ],
)
def test_errors_name_file_line_and_what_was_expected(
    tmp_path: Path, edit: Callable[[list[str]], list[str]], message: str
) -> None:
    path = _broken(tmp_path, edit)
    with pytest.raises(FormatError, match=message) as caught:
        read_wflw(tmp_path)
    assert str(caught.value).startswith(f"{path}:2: ")
    assert caught.value.line == 2 and caught.value.path == path


def test_lenient_reading_keeps_the_good_lines_and_collects_the_broken_ones(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda f: f[:-2] + f[-1:])
    records, problems = read_dataset_leniently("wflw", tmp_path)
    assert len(records) == 5 and [(p.path, p.line, p.check) for p in problems] == [(path, 2, "annotation_format")]
    _, report = read_wflw_with_report(tmp_path, strict=False)
    assert "1 faces or files not read" in report.summary()


def test_unreadable_image_names_the_annotation_line(tmp_path: Path) -> None:
    _dataset(tmp_path)
    (tmp_path / "WFLW_images/51--Dresses/51_Dresses_wearingdress_51_377.jpg").write_bytes(b"not an image")
    with pytest.raises(FormatError, match=r"list_98pt_rect_attr_train\.txt:3: image .*cannot read this image") as e:
        read_wflw(tmp_path)
    assert e.value.check == "image_opens"


def test_a_wrong_folder_names_the_expected_files(tmp_path: Path) -> None:
    (tmp_path / "WFLW").mkdir()
    with pytest.raises(
        FormatError, match=r"expected WFLW_annotations/list_98pt_rect_attr_train_test/.*found \['WFLW/'\]"
    ):
        read_wflw(tmp_path)


def test_writer_refuses_records_that_would_not_read_back_and_writes_nothing(tmp_path: Path) -> None:
    record = _face("0--Parade/a.jpg", 0, "train", seed=1, size=(60, 60))
    image = np.zeros((60, 60, 3), np.uint8)
    bad_id = _face("0--Parade/a.jpg", 1, "train", seed=1, size=(60, 60))
    with pytest.raises(FormatError, match="would read back as 0--Parade/a#0"):
        write_wflw([bad_id], tmp_path, images={bad_id.sample_id: image})
    with pytest.raises(FormatError, match=r"has subsets \['sunglasses'\]; WFLW's are \['largepose'"):
        format_line(replace(record, subsets=["sunglasses"]))
    record = _face("0--Parade/a.jpg", 0, "val", seed=1, size=(60, 60))
    with pytest.raises(FormatError, match=r"has split 'val'"):
        write_wflw([record], tmp_path, images={record.sample_id: image})
    good = _face("0--Parade/a.jpg", 0, "train", seed=1, size=(60, 60))
    other = _face("0--Parade/b.jpg", 0, "train", seed=2, size=(60, 60))
    with pytest.raises(FormatError, match="no image given and none on disk"):
        write_wflw([good, other], tmp_path, images={good.sample_id: image})
    assert not any(tmp_path.rglob("*"))
