#!/usr/bin/env python3
"""Generate crates/resources/src/protobuf/schema_table.rs.

The table describes every Kubernetes protobuf message: its full name as the
OpenAPI definitions spell it (`io.k8s.api.core.v1.PodIP`) and, per field, the
tag, the JSON name, the value type and whether it is repeated or a map.

Inputs:
  * the `k8s-pb` crate's source (prost-generated structs): tags, types, labels.
    Prost loses the original spelling of names (`PodIp`, `pod_ip`).
  * optionally, the Go API types (checkouts of kubernetes/api,
    kubernetes/apimachinery, kubernetes/apiextensions-apiserver and
    kubernetes/kube-aggregator side by side in one directory). Their struct
    tags give the real message names, JSON names, and how Go's encoder treats
    a field: `json:""` (inlined into the parent), value type with `omitempty`
    (a zero value is left out of the JSON). Fields the Go types don't cover keep
    their snake_case name; the decoder resolves those against the OpenAPI
    schema at run time.

Usage:
  python3 tools/gen-proto-schema.py [--k8s-pb DIR] [--go-src DIR] \
      > crates/resources/src/protobuf/schema_table.rs
"""

import argparse
import glob
import os
import re
import sys

SKIP_MODULES = ("apimachinery/pkg/apis/testapigroup",)

# k8s-pb top-level module -> (OpenAPI prefix, directory of the Go checkout).
ROOTS = {
    "api": ("io.k8s.api", "api"),
    "apimachinery": ("io.k8s.apimachinery", "apimachinery"),
    "apiextensions_apiserver": ("io.k8s.apiextensions-apiserver", "apiextensions-apiserver"),
    "kube_aggregator": ("io.k8s.kube-aggregator", "kube-aggregator"),
    "metrics": ("io.k8s.metrics", "metrics"),
}

STRUCT_RE = re.compile(r"^pub struct (\w+) \{")
ATTR_RE = re.compile(r"^\s*#\[prost\((.*)\)\]\s*$")
FIELD_RE = re.compile(r"^\s*pub (?:r#)?(\w+):(.*)$")

SCALARS = {"string": "Str", "bool": "Bool", "int32": "I32", "int64": "I64", "double": "F64", "bytes": "Bytes"}


def find_k8s_pb():
    hits = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/k8s-pb-0.9.0/src")))
    if not hits:
        sys.exit("k8s-pb 0.9.0 not found in ~/.cargo/registry; pass --k8s-pb")
    return hits[0]


def strip_wrappers(ty):
    """`Option<Vec<Box<super::X>>>` -> `super::X`; BTreeMap<K, V> -> V."""
    ty = re.sub(r"\s+", "", ty).rstrip(",")
    changed = True
    while changed:
        changed = False
        for w in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
            if ty.startswith(w) and ty.endswith(">"):
                ty = ty[len(w):-1].rstrip(",")
                changed = True
        m = "::prost::alloc::collections::BTreeMap<"
        if ty.startswith(m) and ty.endswith(">"):
            inner = ty[len(m):-1]
            ty = inner.split(",", 1)[1].rstrip(",")
            changed = True
    return ty


def resolve_path(module, rust_ty):
    """Resolve a Rust type path relative to `module` (list of segments)."""
    parts = rust_ty.split("::")
    base = list(module)
    while parts and parts[0] == "super":
        base.pop()
        parts.pop(0)
    if parts and parts[0] == "crate":
        base = []
        parts.pop(0)
    return tuple(base + parts[:-1]), parts[-1]


def parse_k8s_pb(root):
    """-> {(module tuple, RustName): [(tag, snake, kind, label, (module, Name)|None)]}"""
    messages = {}
    for path in sorted(glob.glob(os.path.join(root, "**", "mod.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), root).replace(os.sep, "/")
        if rel == "." or rel.startswith(SKIP_MODULES):
            continue
        module = tuple(rel.split("/"))
        lines = open(path, encoding="utf-8").read().split("\n")
        i = 0
        current = None
        while i < len(lines):
            line = lines[i]
            m = STRUCT_RE.match(line)
            if m:
                current = []
                messages[(module, m.group(1))] = current
                i += 1
                continue
            if line == "}":
                current = None
            a = ATTR_RE.match(line) if current is not None else None
            if a:
                attr = a.group(1)
                # The field declaration follows, possibly over several lines.
                i += 1
                while lines[i].strip().startswith("#[") or lines[i].strip().startswith("///"):
                    i += 1
                fm = FIELD_RE.match(lines[i])
                if not fm:
                    sys.exit(f"{path}:{i + 1}: expected a field after #[prost]")
                snake, ty = fm.group(1), fm.group(2)
                while not ty.rstrip().endswith(",") or ty.count("<") != ty.count(">"):
                    i += 1
                    ty += " " + lines[i].strip()
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                mm = re.match(r'btree_map = "(\w+), (\w+)"', attr)
                if mm:
                    if mm.group(1) != "string":
                        sys.exit(f"{path}: map key {mm.group(1)} not supported")
                    label, kind = "Map", mm.group(2)
                else:
                    kind = attr.split(",")[0].split("=")[0].strip()
                    label = "Rep" if "repeated" in attr else "One"
                ref = None
                if kind == "message":
                    ref = resolve_path(module, strip_wrappers(ty))
                elif kind not in SCALARS:
                    sys.exit(f"{path}: unsupported prost type {kind}")
                current.append((tag, snake, kind, label, ref))
            i += 1
    return messages


GO_STRUCT_RE = re.compile(r"^type (\w+) struct \{")
GO_LIST_RE = re.compile(r"^type (\w+) \[\]")
GO_FIELD_RE = re.compile(r"^\s*(?:(\w+)\s+)?([^\s`]+)\s+`([^`]*)`")


def parse_go_dir(d):
    """-> (structs {Name: {tag: (json, omit_scalar, omit_any, inline)}}, list type names)"""
    structs, lists = {}, set()
    if not os.path.isdir(d):
        return structs, lists
    for f in sorted(os.listdir(d)):
        if not f.endswith(".go") or f.endswith("_test.go") or "generated" in f:
            continue
        current = None
        for line in open(os.path.join(d, f), encoding="utf-8"):
            line = line.rstrip("\n")
            m = GO_STRUCT_RE.match(line)
            if m:
                current = structs.setdefault(m.group(1), {})
                continue
            m = GO_LIST_RE.match(line)
            if m:
                lists.add(m.group(1))
            if line.startswith("}"):
                current = None
                continue
            if current is None or line.lstrip().startswith("//"):
                continue
            m = GO_FIELD_RE.match(line)
            if not m:
                continue
            tags = m.group(3)
            pb = re.search(r'protobuf:"([^"]*)"', tags)
            js = re.search(r'json:"([^"]*)"', tags)
            if not pb or "," not in pb.group(1):
                continue
            tag = int(pb.group(1).split(",")[1])
            go_name = m.group(1) or m.group(2).lstrip("*").split(".")[-1]
            if js:
                json_parts = js.group(1).split(",")
                inline = json_parts[0] == ""
                json_name = json_parts[0]
            else:
                # No json tag: encoding/json uses the Go field name.
                json_parts, inline, json_name = [go_name], False, go_name
            if json_name == "-":
                continue
            go_ty = m.group(2)
            pointer = go_ty.startswith("*") or go_ty.startswith("[]") or go_ty.startswith("map[")
            opts = json_parts[1:]
            # Go leaves a zero value out of the JSON for a value (not pointer)
            # field tagged omitempty (scalars only; structs are never "empty")
            # or omitzero (any type).
            omit_scalar = not pointer and ("omitempty" in opts or "omitzero" in opts)
            omit_any = not pointer and "omitzero" in opts
            current[tag] = (json_name, omit_scalar, omit_any, inline)
    return structs, lists


def full_name(module, name):
    prefix, _ = ROOTS[module[0]]
    return ".".join([prefix] + list(module[1:]) + [name])


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s-pb", default=None)
    ap.add_argument("--go-src", default=None)
    args = ap.parse_args()
    root = args.k8s_pb or find_k8s_pb()
    messages = parse_k8s_pb(root)

    go = {}
    for module in {m for m, _ in messages}:
        if args.go_src:
            go_dir = os.path.join(args.go_src, ROOTS[module[0]][1], *module[1:])
            go[module] = parse_go_dir(go_dir)
        else:
            go[module] = ({}, set())

    # Real message names: the Go struct with the same case-insensitive name.
    real = {}
    for module, rust_name in messages:
        structs, lists = go[module]
        by_lower = {n.lower(): n for n in list(structs) + list(lists)}
        real[(module, rust_name)] = by_lower.get(rust_name.lower(), rust_name)

    order = sorted(messages, key=lambda k: full_name(k[0], real[k]))
    index = {k: i for i, k in enumerate(order)}
    if len(order) > 0xFFFF:
        sys.exit("too many messages for u16 indices")

    out = []
    resolved = unresolved = 0
    for key in order:
        module, rust_name = key
        name = real[key]
        structs, lists = go[module]
        go_fields = structs.get(name)
        mflags = []
        fields = sorted(messages[key], key=lambda f: f[0])
        if name in lists and len(fields) == 1 and fields[0][3] == "Rep":
            mflags.append("LIST")
        rows = []
        for tag, snake, kind, label, ref in fields:
            flags = []
            info = go_fields.get(tag) if go_fields else None
            if info is not None:
                json_name, omit_scalar, omit_any, inline = info
                flags.append("JSON")
                if inline:
                    flags.append("INLINE")
                if omit_any or (omit_scalar and kind != "message"):
                    flags.append("OMIT_ZERO")
                fname = json_name
                resolved += 1
            else:
                fname = snake
                unresolved += 1
            if kind == "message":
                if ref not in index:
                    sys.exit(f"{full_name(module, name)}.{snake}: unknown message {ref}")
                ty = f"Msg({index[ref]})"
            else:
                ty = SCALARS[kind]
            rows.append(f"f({tag},{rust_str(fname)},{ty},{label},{'|'.join(flags) or '0'})")
        out.append((full_name(module, name), "|".join(mflags) or "0", rows))

    total_fields = sum(len(r) for _, _, r in out)
    print("// @generated by tools/gen-proto-schema.py: do not edit by hand.")
    print("// Source: k8s-pb 0.9.0 (prost structs: tags, types, labels) and the Go API types")
    print("// of kubernetes/{api,apimachinery,apiextensions-apiserver,kube-aggregator}")
    print("// (message and JSON names, inline and omitempty). Regenerate with:")
    print("//   python3 tools/gen-proto-schema.py --go-src <dir with those checkouts> \\")
    print("//       > crates/resources/src/protobuf/schema_table.rs")
    print(f"// {len(out)} messages, {total_fields} fields ({resolved} named from Go, {unresolved} resolved at run time).")
    print("use super::schema::Label::{Map, One, Rep};")
    print("use super::schema::Ty::{Bool, Bytes, F64, I32, I64, Msg, Str};")
    print("use super::schema::{f, Message, INLINE, JSON, LIST, OMIT_ZERO};")
    print()
    print(f"pub(super) static MESSAGES: [Message; {len(out)}] = [")
    for name, mflags, rows in out:
        print(f"Message {{ name: {rust_str(name)}, flags: {mflags}, fields: &[")
        for r in rows:
            print(r + ",")
        print("] },")
    print("];")
    print(f"generated {len(out)} messages, {total_fields} fields, {unresolved} unresolved", file=sys.stderr)


if __name__ == "__main__":
    main()
