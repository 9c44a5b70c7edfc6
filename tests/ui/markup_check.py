"""A static check: every value interpolated into a string in the UI is escaped, numeric, or marked trusted.

Gradio renders Markdown and HTML with raw tags allowed, and its error toasts as HTML, so a library value (a file
name, a tag, a document title, a reason quoting a path) put into such a string unescaped is markup the library
controls. Rather than guess which strings end up in Markdown, the rule is strict: in `anagnorisis/ui/`, every
`{value}` of an f-string must be

- a call to one of the escaping helpers of `anagnorisis.ui.safe` (`md`, `md_code`, `md_lines`, `html_text`,
  `md_join`) or to a function that returns a number (`len`, `int`, `round`, …);
- formatted with a numeric format spec (`{score:.2f}`, `{count:,}`);
- or on a line that says why it is trusted: `# trusted: <reason>` (a kind name from the registry, a number), or
  `# plain text: <where>` when the string goes only to a plain-text component (Textbox, a "str" Dataframe cell,
  a gallery caption), where escaping would show `&#60;` to the user.

f-strings given to logging calls and to plain-text keyword arguments (`label=`, `elem_id=`, …) are exempt: those
never reach the page as markup. `str.format` and `%` formatting of strings are refused outright in the UI.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

SAFE_CALLS = {"md", "md_code", "md_lines", "html_text", "md_join",
              "len", "int", "round", "float", "abs", "min", "max", "sum"}
PLAIN_TEXT_KEYWORDS = {"elem_id", "elem_classes", "label", "placeholder", "info", "api_name", "key", "value_label"}
LOG_NAMES = {"log", "logger", "logging"}
_NUMERIC_SPEC = re.compile(r"[,_]?(\.\d+)?[dfeEgGn%xXob]?$")


def _is_numeric_spec(spec: ast.JoinedStr | None) -> bool:
    if spec is None or not all(isinstance(part, ast.Constant) for part in spec.values):
        return False
    text = "".join(str(part.value) for part in spec.values)
    return bool(text) and re.search(r"[,_.dfeEgGn%]", text) is not None and bool(
        re.fullmatch(r"[<>^=]?[+\- ]?#?0?\d*[,_]?(\.\d+)?[dfeEgGn%xXob]?", text))


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _is_log_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id in LOG_NAMES)


def unsafe_interpolations(source: str, filename: str = "<ui>") -> list[str]:
    """`file:line: expression` for each interpolation that breaks the rule above."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent

    def trusted(lineno: int) -> bool:
        return 0 < lineno <= len(lines) and ("# trusted:" in lines[lineno - 1] or "# plain text:" in lines[lineno - 1])

    def exempt(joined: ast.JoinedStr) -> bool:
        node: ast.AST = joined
        while node in parents:
            parent = parents[node]
            if isinstance(parent, ast.keyword) and parent.arg in PLAIN_TEXT_KEYWORDS:
                return True
            if _is_log_call(parent):
                return True
            if isinstance(parent, (ast.stmt, ast.Lambda)):
                return False
            if isinstance(parent, ast.JoinedStr):  # a nested f-string (in a format spec) counts with its outer one
                return exempt(parent)
            node = parent
        return False

    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and not any(isinstance(p, ast.FormattedValue) and p.format_spec is node
                                                       for p in [parents.get(node)]):
            if exempt(node):
                continue
            for part in node.values:
                if not isinstance(part, ast.FormattedValue):
                    continue
                value = part.value
                if isinstance(value, ast.Constant) or _call_name(value) in SAFE_CALLS:
                    continue
                if _is_numeric_spec(part.format_spec):
                    continue
                if trusted(value.lineno) or trusted(getattr(value, "end_lineno", value.lineno)):
                    continue
                found.append(f"{filename}:{value.lineno}: {{{ast.unparse(value)}}}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
            if not trusted(node.lineno):
                found.append(f"{filename}:{node.lineno}: str.format")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                and isinstance(node.left.value, str):
            if not trusted(node.lineno) and not _is_log_call(parents.get(node, node)):
                found.append(f"{filename}:{node.lineno}: % formatting")
    return found


def check_package(folder: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "safe.py":
            continue
        found += unsafe_interpolations(path.read_text(), str(path.relative_to(folder.parent.parent)))
    return found


if __name__ == "__main__":
    for line in check_package(Path(__file__).resolve().parents[2] / "anagnorisis" / "ui"):
        print(line)
