#!/usr/bin/env python3
"""Writes the tables of standard atoms and bonds in docs/language.md from prelude/prelude.mod.

    python3 scripts/prelude_table.py            # print the tables
    python3 scripts/prelude_table.py --write    # replace them in docs/language.md
    python3 scripts/prelude_table.py --check    # fail if docs/language.md is out of date

The tables sit between the markers <!-- prelude:begin --> and <!-- prelude:end -->. Each row
comes from one declaration: its name and parameters, its signature, the fields `shape`,
`norm`, `mass` and `sensitivity` (or their defaults: atoms have mass 1, bonds mass 0, both
sensitivity 1), and a description from the comment on the declaration's line or, for an
atom, from the comment block above it ("Name(args): description. Norm ...").
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- prelude:begin -->", "<!-- prelude:end -->"

DECLARATION = re.compile(
    r"^(?P<kind>atom|bond)\s+(?P<name>\w+)(?P<params>\([^)]*\))?\s*:\s*(?P<sig>.+?)"
    r"\s*(?P<body>\{[^}]*\})?[ \t]*(?:#[ \t]*(?P<comment>[^\n]*))?$",
    re.M | re.S,
)


def fields_of(body):
    fields = {}
    for line in (body or "").strip("{}").splitlines():
        line = line.split("#")[0].strip().rstrip(";")
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key.strip()] = value.strip()
    return fields


def comment_above(text, start):
    """The comment block just above a declaration, joined into one line."""
    lines = text[:start].rstrip("\n").split("\n")
    block = []
    while lines and lines[-1].startswith("#"):
        block.insert(0, lines.pop()[1:].strip())
    if not block or block[0] == "":
        return ""
    summary = " ".join(block)
    summary = re.sub(r"^\w+\([^)]*\):\s*", "", summary)  # drop "Linear(dout, din): "
    summary = re.sub(r"\s*Norm[^.]*\.\s*$", "", summary)  # the norm has its own column
    summary = re.sub(r"\s*Norm:.*$", "", summary)
    return summary.rstrip(".")


def code(text):
    return "`" + text.replace("|", "\\|") + "`"


def tables(prelude):
    atoms, bonds = [], []
    for m in DECLARATION.finditer(prelude):
        fields = fields_of(m.group("body"))
        name = m.group("name") + (m.group("params") or "")
        sig = " ".join(m.group("sig").split())
        if m.group("kind") == "atom":
            atoms.append(
                "| {} | {} | {} | {} | {} | {} | {} |".format(
                    code(name),
                    code(sig),
                    code(fields.get("shape", "?")),
                    fields.get("mass", "1"),
                    fields.get("sensitivity", "1"),
                    code(fields.get("norm", "?")),
                    comment_above(prelude, m.start()),
                )
            )
        else:
            bonds.append(
                "| {} | {} | 0 | {} | {} |".format(
                    code(name),
                    code(sig),
                    fields.get("sensitivity", "1"),
                    (m.group("comment") or "").strip(),
                )
            )
    return "\n".join(
        [
            "Atoms:",
            "",
            "| atom | signature | weight shape | mass | sensitivity | default norm | what it is |",
            "|---|---|---|---|---|---|---|",
            *atoms,
            "",
            "Bonds (no weights, no norm):",
            "",
            "| bond | signature | mass | sensitivity | notes |",
            "|---|---|---|---|---|",
            *bonds,
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prelude", default=ROOT / "prelude" / "prelude.mod", type=pathlib.Path)
    parser.add_argument("--doc", default=ROOT / "docs" / "language.md", type=pathlib.Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update the tables in --doc")
    mode.add_argument("--check", action="store_true", help="fail if the tables in --doc are out of date")
    args = parser.parse_args()

    generated = tables(args.prelude.read_text())
    if not (args.write or args.check):
        print(generated)
        return 0
    doc = args.doc.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{args.doc}: the markers {BEGIN} and {END} are missing", file=sys.stderr)
        return 1
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{BEGIN}\n{generated}\n{END}{tail}"
    if args.write:
        args.doc.write_text(updated)
        return 0
    if updated != doc:
        print(
            f"{args.doc}: the tables of standard atoms and bonds differ from {args.prelude}; "
            "run python3 scripts/prelude_table.py --write",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
