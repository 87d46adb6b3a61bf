#!/usr/bin/env python3
"""Generate crates/resources/src/openapi/list_semantics.rs.

Reads the Kubernetes Go API types and collects, per OpenAPI definition and
JSON field, what strategic merge patch and server-side apply need:

- struct tags `patchStrategy:"..."` and `patchMergeKey:"..."` (or the
  `+patchStrategy=` / `+patchMergeKey=` comment markers),
- field markers `+listType=`, `+listMapKey=` (repeatable), `+mapType=`,
- type markers `+structType=` / `+mapType=` on a struct, recorded with an
  empty field name (the extension belongs on the definition itself).

Fields of embedded (inline) structs are attributed to the embedding struct, as
encoding/json and openapi-gen do.

Usage:
    tools/gen-list-semantics.py [GO_ROOT] > crates/resources/src/openapi/list_semantics.rs

GO_ROOT (default /tmp/k8sgo) holds the source trees of k8s.io/api (`api/`),
k8s.io/apimachinery (`apimachinery/`), k8s.io/apiextensions-apiserver
(`apiextensions-apiserver/`) and k8s.io/kube-aggregator (`kube-aggregator/`),
e.g. `git --git-dir=<mirror> archive HEAD | tar -x -C GO_ROOT/api`.
"""

import os
import re
import sys

# (directory under GO_ROOT, Go import path, OpenAPI definition prefix)
MODULES = [
    ("api", "k8s.io/api", "io.k8s.api"),
    ("apimachinery", "k8s.io/apimachinery", "io.k8s.apimachinery"),
    (
        "apiextensions-apiserver",
        "k8s.io/apiextensions-apiserver",
        "io.k8s.apiextensions-apiserver",
    ),
    ("kube-aggregator", "k8s.io/kube-aggregator", "io.k8s.kube-aggregator"),
]

VERSION_DIR = re.compile(r"^v\d+((alpha|beta)\d+)?$")
TYPE_START = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*$")
FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([\*\[\]\w\.]+(?:\[[^\]]*\][\*\w\.]+)?)\s*(`[^`]*`)?\s*(//.*)?$")
MARKER = re.compile(r"^\s*//\s*\+(\w+)=(\S+)\s*$")
IMPORT_LINE = re.compile(r'^\s*(?:(\w+)\s+)?"([^"]+)"\s*$')


def tag_value(tags, key):
    m = re.search(key + r':"([^"]*)"', tags or "")
    return m.group(1) if m else None


def markers(comments):
    """`+key=value` markers of a comment block, as key -> [values]."""
    out = {}
    for line in comments:
        m = MARKER.match(line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def parse_imports(text):
    aliases = {}
    block = False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("import ("):
            block = True
            continue
        if block and s == ")":
            block = False
            continue
        if block or s.startswith("import "):
            m = IMPORT_LINE.match(s[len("import "):] if s.startswith("import ") else s)
            if m:
                path = m.group(2)
                aliases[m.group(1) or path.rsplit("/", 1)[-1]] = path
    return aliases


def parse_file(text):
    """Structs of one Go file: name -> (type markers, [field]).

    A field is (json name or None if embedded, Go type, tags, markers)."""
    structs = {}
    lines = text.splitlines()
    comments = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = TYPE_START.match(line)
        if not m:
            comments = comments + [line] if line.strip().startswith("//") else []
            i += 1
            continue
        name, type_markers = m.group(1), markers(comments)
        fields, field_comments, depth = [], [], 1
        i += 1
        while i < len(lines) and depth > 0:
            s = lines[i].strip()
            i += 1
            if depth > 1:
                depth += s.count("{") - s.count("}")
                continue
            if s == "}":
                depth = 0
                break
            if s.startswith("//"):
                field_comments.append(s)
                continue
            if not s:
                field_comments = []
                continue
            if s.endswith("{"):  # an anonymous struct: skipped
                depth += 1
                field_comments = []
                continue
            fm = FIELD.match(s)
            if fm:
                go_name, go_type, tags = fm.group(1), fm.group(2), fm.group(3) or ""
                json_tag = tag_value(tags, "json")
                json_name = json_tag.split(",")[0] if json_tag is not None else None
                if go_name is None and not json_name:  # embedded, inline
                    fields.append((None, go_type, tags, markers(field_comments)))
                elif go_name is None and json_name != "-":  # embedded, named
                    fields.append((json_name, go_type, tags, markers(field_comments)))
                elif json_name and json_name != "-" and go_name and go_name[0].isupper():
                    # Fields without a json tag marshal themselves (JSONSchemaPropsOrArray):
                    # openapi-gen does not describe them.
                    fields.append((json_name, go_type, tags, markers(field_comments)))
            field_comments = []
        structs[name] = (type_markers, fields)
        comments = []
    return structs


def collect(root):
    """Every versioned package: import path -> (definition prefix, structs, imports)."""
    packages = {}
    for directory, import_root, def_root in MODULES:
        base = os.path.join(root, directory)
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            if rel == "." or not VERSION_DIR.match(os.path.basename(dirpath)):
                continue
            if "/testdata" in dirpath or "/test/" in dirpath or "/examples" in dirpath:
                continue
            structs, imports = {}, {}
            for f in sorted(files):
                if not (f.startswith("types") and f.endswith(".go")):
                    continue
                if f.endswith("_test.go") or "generated" in f:
                    continue
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    text = fh.read()
                structs.update(parse_file(text))
                imports.update(parse_imports(text))
            if structs:
                path = import_root + "/" + rel.replace(os.sep, "/")
                prefix = def_root + "." + rel.replace(os.sep, ".")
                packages[path] = (prefix, structs, imports)
    return packages


def semantics(tags, mk):
    strategy = tag_value(tags, "patchStrategy") or first(mk, "patchStrategy")
    merge_key = tag_value(tags, "patchMergeKey") or first(mk, "patchMergeKey")
    list_type = first(mk, "listType")
    keys = tuple(mk.get("listMapKey", []))
    map_type = first(mk, "mapType")
    if not (strategy or merge_key or list_type or keys or map_type):
        return None
    return (strategy, merge_key, list_type, keys, map_type)


def first(mk, key):
    values = mk.get(key)
    return values[0] if values else None


def fields_of(packages, path, struct, seen=()):
    """(json name, tags, markers) of a struct, embedded structs flattened."""
    _prefix, structs, imports = packages[path]
    out = []
    for json_name, go_type, tags, mk in structs[struct][1]:
        if json_name is not None:
            out.append((json_name, tags, mk))
            continue
        target = go_type.lstrip("*")
        target_path = path
        if "." in target:
            alias, target = target.split(".", 1)
            target_path = imports.get(alias)
        key = (target_path, target)
        if target_path in packages and target in packages[target_path][1] and key not in seen:
            out.extend(fields_of(packages, target_path, target, seen + (key,)))
    return out


def table(packages):
    rows = {}
    for path, (prefix, structs, _imports) in packages.items():
        for name, (type_markers, _fields) in structs.items():
            definition = prefix + "." + name
            struct_type = first(type_markers, "structType") or first(type_markers, "mapType")
            if struct_type:
                rows[(definition, "")] = (None, None, None, (), struct_type)
            for json_name, tags, mk in fields_of(packages, path, name):
                s = semantics(tags, mk)
                if s:
                    rows[(definition, json_name)] = s
    return sorted(rows.items())


def rs_opt(v):
    return "None" if v is None else 'Some("%s")' % v


def render(rows):
    out = [
        "// @generated by tools/gen-list-semantics.py from the Kubernetes Go API types",
        "// (k8s.io/api, apimachinery, apiextensions-apiserver, kube-aggregator).",
        "// Do not edit. Regenerate with:",
        "//     tools/gen-list-semantics.py /tmp/k8sgo > crates/resources/src/openapi/list_semantics.rs",
        "",
        "//! List, map and struct semantics of every field of the built-in types, as the",
        "//! Go types declare them for strategic merge patch and server-side apply:",
        "//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,",
        "//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and",
        "//! `x-kubernetes-map-type`. An empty field name stands for the definition",
        "//! itself (`+structType=atomic`).",
        "",
        "/// What one field (or, with an empty field name, one definition) declares.",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub struct ListSemantics {",
        "    pub definition: &'static str,",
        "    pub field: &'static str,",
        "    pub patch_strategy: Option<&'static str>,",
        "    pub merge_key: Option<&'static str>,",
        "    pub list_type: Option<&'static str>,",
        "    pub list_map_keys: &'static [&'static str],",
        "    pub map_type: Option<&'static str>,",
        "}",
        "",
        "/// The semantics `field` of `definition` declares; `field == \"\"` asks about",
        "/// the definition itself.",
        "pub fn lookup(definition: &str, field: &str) -> Option<&'static ListSemantics> {",
        "    TABLE",
        "        .binary_search_by(|s| (s.definition, s.field).cmp(&(definition, field)))",
        "        .ok()",
        "        .map(|i| &TABLE[i])",
        "}",
        "",
        "const fn s(",
        "    definition: &'static str,",
        "    field: &'static str,",
        "    patch_strategy: Option<&'static str>,",
        "    merge_key: Option<&'static str>,",
        "    list_type: Option<&'static str>,",
        "    list_map_keys: &'static [&'static str],",
        "    map_type: Option<&'static str>,",
        ") -> ListSemantics {",
        "    ListSemantics {",
        "        definition,",
        "        field,",
        "        patch_strategy,",
        "        merge_key,",
        "        list_type,",
        "        list_map_keys,",
        "        map_type,",
        "    }",
        "}",
        "",
        "/// Sorted by (definition, field).",
        "#[rustfmt::skip]",
        "pub static TABLE: &[ListSemantics] = &[",
    ]
    for (definition, field), (strategy, key, list_type, keys, map_type) in rows:
        out.append(
            '    s("%s", "%s", %s, %s, %s, &[%s], %s),'
            % (
                definition,
                field,
                rs_opt(strategy),
                rs_opt(key),
                rs_opt(list_type),
                ", ".join('"%s"' % k for k in keys),
                rs_opt(map_type),
            )
        )
    out.append("];")
    return "\n".join(out) + "\n"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/k8sgo"
    packages = collect(root)
    if not packages:
        sys.exit("no Go API packages under " + root)
    sys.stdout.write(render(table(packages)))


if __name__ == "__main__":
    main()
