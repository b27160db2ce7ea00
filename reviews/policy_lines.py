"""Where in a policy file an error is: every error names its line, as a person fixes it there."""

from __future__ import annotations

import re


def syntax_error(message: str) -> str:
    """tomllib says "... (at line 3, column 5)"; lead with the line as every other error does."""
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        return f" line {match[1]}: TOML syntax: {message[: match.start()]} (column {match[2]})"
    return f": TOML syntax: {message}"


class SourceLines:
    """Where each table and key sits in the file, so an error can name its line."""

    HEADER = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?$")
    KEY = re.compile(r"^([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")

    def __init__(self, text: str):
        # (table name, header line, {key: line}); "" is the top of the file.
        self.tables: list[tuple[str, int, dict[str, int]]] = [("", 0, {})]
        for number, line in enumerate(text.splitlines(), start=1):
            code = line.split("#", 1)[0].strip()
            if header := self.HEADER.match(code):
                self.tables.append((header[1].replace('"', ""), number, {}))
            elif key := self.KEY.match(code):
                self.tables[-1][2].setdefault(key[1].strip('"'), number)

    def line(self, table: str, index: int | None, key: str) -> str:
        found = [t for t in self.tables if t[0] == table]
        chosen = (
            found[index]
            if index is not None and index < len(found)
            else (found[0] if found else None)
        )
        if chosen is None:
            return ""
        number = chosen[2].get(key, chosen[1]) if key else chosen[1]
        return f" line {number}" if number else ""
