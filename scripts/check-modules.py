#!/usr/bin/env python3
"""Fails when two top-level modules of one crate import each other, directly or round a loop.

The house rule (ARCHITECTURE.md): domain below HTTP, store below domain, nothing imports the
layer above it. A crate's top-level modules are its `src/<m>.rs` files and `src/<m>/`
folders (not `lib.rs`/`main.rs`); module A depends on B when a file of A names `crate::B`
(in a path or a `use crate::{...}` group), test modules (`mod tests { ... }` at the end of a
file) excepted. Prints each loop found and `module loops: N`; exits 1 when N > 0.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["shared", "coordinator", "edge-worker", "bench", "examples/ticket-shop", "testkit", "loadgen", "cli"]


def modules(src):
    found = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if f.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, f), src).split(os.sep)[0]
                name = rel[:-3] if rel.endswith(".rs") else rel
                if name not in ("lib", "main"):
                    found.setdefault(name, []).append(os.path.join(dirpath, f))
    return found


def deps(files, names, own):
    out = set()
    for path in files:
        text = open(path, encoding="utf-8").read()
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
        named = re.findall(r"crate::([a-z_][a-z0-9_]*)", text)
        for group in re.findall(r"use crate::\{([^}]*)\}", text):
            named += re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group)
        out |= {n for n in named if n in names and n != own}
    return out


def loops(graph):
    """Strongly connected components with more than one module."""
    index, low, stack, on, counter, found = {}, {}, [], set(), [0], []

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


total = 0
for crate in CRATES:
    src = os.path.join(ROOT, crate, "src")
    if not os.path.isdir(src):
        continue
    mods = modules(src)
    graph = {m: deps(files, mods, m) for m, files in mods.items()}
    for comp in loops(graph):
        total += 1
        print(f"{crate}: {' <-> '.join(comp)}")
print(f"module loops: {total}")
sys.exit(1 if total else 0)
