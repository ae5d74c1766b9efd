"""The shape of src/: the core names no job, jobs do not include each other, and no circle of
includes exists between modules (docs/development.md, "Layout").

A module is a `.c` file with its `.h` and its internal `_int.h`; a circle is a chain of
`#include "..."` lines that leads from a module back to itself.
"""
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
JOBS = sorted(d.name for d in SRC.iterdir() if d.is_dir() and d.name != "core")


def includes():
    """(file relative to src, header it includes) for every quoted include under src/."""
    for path in sorted(SRC.rglob("*.[ch]")):
        rel = path.relative_to(SRC).as_posix()
        for header in INCLUDE.findall(path.read_text()):
            yield rel, header


def module(path):
    stem = path.rsplit(".", 1)[0]
    return stem[: -len("_int")] if stem.endswith("_int") else stem


def folder(path):
    return path.split("/", 1)[0] if "/" in path else ""


def circles(edges):
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_core_includes_no_job_header():
    wrong = [f"{f} includes {h}" for f, h in includes()
             if folder(f) == "core" and folder(h) != "core"]
    assert not wrong, "the core must know jobs only through core/job.h:\n" + "\n".join(wrong)


def test_jobs_do_not_include_each_other():
    wrong = [f"{f} includes {h}" for f, h in includes()
             if folder(f) in JOBS and folder(h) in JOBS and folder(f) != folder(h)]
    assert not wrong, "a job may include the core and itself only:\n" + "\n".join(wrong)


def test_no_circle_of_includes():
    edges = {}
    for f, h in includes():
        if module(f) != module(h):
            edges.setdefault(module(f), set()).add(module(h))
    assert circles(edges) == []


def test_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_job_folder_is_listed():
    listed = INCLUDE.findall((SRC / "jobs.c").read_text())
    assert sorted(h for h in listed if folder(h) in JOBS) == sorted(f"{j}/{j}.h" for j in JOBS)
