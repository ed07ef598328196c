"""Rebuild python_reference.txt from CPython's own pydoc_data.topics.

The text is the Python Language Reference as `help()` shows it: real English
prose with code, ~465 KB. We ship the file so every machine trains on the same
bytes whatever its Python version. Run: python data/corpus/regenerate.py
"""
from pathlib import Path
from pydoc_data.topics import topics

OUT = Path(__file__).with_name("python_reference.txt")


def main() -> None:
    text = "\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text)} characters from {len(topics)} topics)")


if __name__ == "__main__":
    main()
