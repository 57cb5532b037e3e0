"""Every `#include "hone/<module>/..."` points down the dependency line of docs/ARCHITECTURE.md.

The line is read from the document itself (the first line that starts with "Dependencies run one
way:"), so the document and the code cannot drift apart: a module may include itself and the
modules to its left; modules written together in braces ({export, serve}) sit at one level and
may not include each other. The build's view folders (cmake/HoneDependencies.cmake's
HONE_MODULE_ORDER) must list the same modules in the same order.

usage: include_order_test.py SOURCE_DIR
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"hone/([a-z_]+)(/|\.h")', re.M)


def dependency_line(doc: str) -> list[list[str]]:
    for line in doc.splitlines():
        if line.startswith("Dependencies run one way:"):
            chain = line.split(":", 1)[1].strip().strip("`. ")
            levels = []
            for part in chain.split("←"):
                part = part.strip().strip("`")
                names = [n.strip() for n in part.strip("{} ").split(",")]
                levels.append([n for n in names if n])
            return levels
    raise SystemExit("docs/ARCHITECTURE.md has no line starting with 'Dependencies run one way:'")


def module_of(path: pathlib.Path, root: pathlib.Path) -> str | None:
    rel = path.relative_to(root).parts
    if rel[0] == "src" and len(rel) > 2:
        return rel[1]
    if rel[0] == "include" and len(rel) > 3 and rel[1] == "hone":
        return rel[2]
    if rel[0] == "include" and len(rel) == 3 and rel[2].endswith(".h"):
        return rel[2][:-2]  # include-all headers: hone/randnla.h belongs to randnla
    if rel[0] == "tools":
        return "tools"
    return None


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    levels = dependency_line((root / "docs/ARCHITECTURE.md").read_text())
    rank = {name: i for i, level in enumerate(levels) for name in level}
    problems = []

    cmake = (root / "cmake/HoneDependencies.cmake").read_text()
    m = re.search(r"set\(HONE_MODULE_ORDER ([^)]*?)\s+CACHE", cmake, re.S)
    built = m.group(1).split() if m else []
    documented = [n for level in levels for n in level if n != "tools"]
    if built != documented:
        problems.append(f"HONE_MODULE_ORDER {built} differs from the documented line {documented}")

    folders = {p.name for p in (root / "src").iterdir() if p.is_dir()}
    for name in sorted(folders - set(rank)):
        problems.append(f"src/{name} is not on the documented dependency line")

    checked = 0
    for path in sorted(list(root.glob("src/**/*")) + list(root.glob("include/hone/**/*")) + list(root.glob("tools/**/*"))):
        if path.suffix not in {".h", ".cpp", ".cu", ".cuh"} or not path.is_file():
            continue
        module = module_of(path, root)
        if module is None:
            continue
        for target, _ in INCLUDE.findall(path.read_text(errors="replace")):
            checked += 1
            if target == module:
                continue
            if target not in rank:
                problems.append(f"{path.relative_to(root)} includes hone/{target}, which is not on the line")
            elif rank[target] > rank[module] or (rank[target] == rank[module]):
                problems.append(f"{path.relative_to(root)} ({module}) includes hone/{target}: it points up the line")
    if checked < 100:
        problems.append(f"only {checked} hone includes found: is {root} the source tree?")
    for p in problems:
        print("FAIL:", p)
    print(f"{checked} includes checked against {' <- '.join('/'.join(l) for l in levels)}")
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
