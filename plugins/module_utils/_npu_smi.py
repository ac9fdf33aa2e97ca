# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Parse what Huawei's ``npu-smi`` prints, as pure ``text -> data`` functions.

Covered commands (real captures in tests/unit/fixtures/npu-smi, see docs/npu-smi.md):
``npu-smi info`` (the box table), ``info -m``, ``info -l``, ``info -t memory|usages|
board|common|temp|power|health -i N``, ``info -t phyid-remap -p N``, ``info -t topo``
and ``info -h``.

The table is read by its ``|`` cells and by the column labels of its header, never by
character offsets: widths change with the npu-smi version (90 to 116 columns), with
the width of the NPU id, and with copy/paste damage (trailing spaces).

Which id does ``/dev/davinci<N>`` follow?  The chip's **physical id**:

* npu-smi reference, ``npu-smi info -t phyid-remap -p phy_id``: "phy_id: chip physical
  ID, obtained with ``ls /dev/davinci*``; ``/dev/davinci0`` means physical ID 0"
  (hiascend.com, Atlas 200I A2 25.2.0 ``re/npu/npusmi_059.html``; the same sentence
  in the Atlas 300V vNPU guide ``300V_0049.html``);
* Ascend Docker Runtime ``runtime/main.go`` ``addDevice`` mounts ``/dev/davinci<id>``
  for every id of ``ASCEND_VISIBLE_DEVICES`` and ``runtime/dcmi/dcmi.go``
  ``FindDevice`` ("find device by phyical id") turns that id into a logic id with
  ``dcmi_get_device_logicid_from_phyid`` (Ascend/ascend-docker-runtime @ c451124);
* Ascend Device Plugin ``pkg/common/device.go`` ``GetDeviceID`` ("get device physical
  id") feeds ``pkg/server/plugin.go`` ``mountDevice`` -> ``/dev/davinci<id>``
  (Ascend/ascend-device-plugin @ 56adb78).

Only the A3 table (``Chip  Phy-ID`` column) and the A3 ``info -m`` (``Chip Phy-ID``
column) print the physical id.  Everywhere else it is ``None`` here and the caller
derives it the documented way: ``npu-smi info -t phyid-remap -p <N>`` for every
``/dev/davinci<N>`` (:func:`parse_phyid_remap`, :func:`apply_phyid_remap`).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = [
    "NpuSmiMismatchError",
    "NpuSmiParseError",
    "apply_phyid_remap",
    "davinci_path",
    "merge_chip_map",
    "parse_health",
    "parse_info",
    "parse_info_help",
    "parse_info_l",
    "parse_info_m",
    "parse_info_type",
    "parse_memory",
    "parse_phyid_remap",
    "parse_topo",
    "parse_usages",
]

# Placeholders npu-smi prints for "no value": NA (310P power, 310B bus id), "-" (power
# of the second die of an A3 NPU, logic id of an MCU row).
_NA = frozenset(("NA", "N/A", "-", "--"))
_IDLE_RE = re.compile(r"^No running processes found in NPU\s+(\d+)$")
_BANNER_RE = re.compile(r"^npu-smi\s+(?P<tool>\S+)\s+Version:\s*(?P<driver>\S+)$")
_BORDER_RE = re.compile(r"^\+[-=+]*\+$")
# A column label of the table header: words joined by single spaces, ending in a unit
# in parentheses ("Power(W)", "HBM-Usage(MB)", "NPU Util(%)").
_LABEL_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*(?: [A-Za-z][A-Za-z0-9-]*)*\([^)]*\)")
# One value of a metric cell: a "used / total" pair (spacing varies: "64293/ 65536",
# "0     / 0") or a single token.
_VALUE_RE = re.compile(r"[^\s/]+\s*/\s*[^\s/]+|[^\s/]+")

# Table column label -> chip key.  Labels ending in "-Usage(...)" are pairs.
_METRIC_KEYS = {
    "Power(W)": "power_w",
    "Temp(C)": "temp_c",
    "Hugepages-Usage(page)": "hugepages",
    "AICore(%)": "aicore_pct",
    "NPU Util(%)": "aicore_pct",
    "Memory-Usage(MB)": "ddr",
    "HBM-Usage(MB)": "hbm",
}
# Words of the id cells of the second header row -> chip key.  "Device" is the column
# the npu-smi reference calls the chip number (芯片编号) on 310/310B/310P; it is kept as
# the logic id until ``info -m`` (which names it "Chip Logic ID") confirms or corrects it.
_SECOND_ID_KEYS = {"Chip": "chip_id", "Phy-ID": "phy_id", "Device": "logic_id"}
_INFO_M_KEYS = {
    "NPU ID": "npu_id",
    "Chip ID": "chip_id",
    "Chip Logic ID": "logic_id",
    "Chip Phy-ID": "phy_id",
    "Chip Name": "name",
}

Line = Tuple[int, str]


class NpuSmiParseError(ValueError):
    """Output of npu-smi that cannot be read: empty, garbled or cut short.

    ``line_number`` (1-based) and ``line`` name the first offending line; both are
    ``None`` when the problem is the output as a whole.
    """

    def __init__(self, message: str, line_number: Optional[int] = None, line: Optional[str] = None) -> None:
        self.message = message
        self.line_number = line_number
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        if self.line_number is None:
            return self.message
        return "%s (line %d: %r)" % (self.message, self.line_number, self.line)


class NpuSmiMismatchError(ValueError):
    """Two npu-smi outputs of the same host disagree (e.g. a chip missing from one)."""


# --------------------------------------------------------------------------- helpers


def _lines(text: str) -> List[Line]:
    """Numbered lines without line ends; raise on output that is empty or blank."""
    if text is None or not text.strip():
        raise NpuSmiParseError("npu-smi printed nothing", 1, "")
    return [(number, raw.rstrip("\r")) for number, raw in enumerate(text.split("\n"), 1)]


def _first_content(lines: Sequence[Line]) -> Line:
    for number, raw in lines:
        if raw.strip():
            return number, raw
    return 1, ""


def _fail(message: str, line: Optional[Line] = None) -> NpuSmiParseError:
    if line is None:
        return NpuSmiParseError(message)
    return NpuSmiParseError(message, line[0], line[1])


def _is_na(token: Optional[str]) -> bool:
    return token is None or token.strip() in _NA or not token.strip()


def _int(token: str, what: str, line: Line) -> int:
    """An integer field that must be present."""
    try:
        return int(token)
    except (TypeError, ValueError):
        raise _fail("%s is not an integer: %r" % (what, token), line) from None


def _opt_int(token: Optional[str], what: str, line: Line) -> Optional[int]:
    return None if _is_na(token) else _int(token, what, line)  # type: ignore[arg-type]


def _opt_float(token: Optional[str], what: str, line: Line) -> Optional[float]:
    if _is_na(token):
        return None
    try:
        return float(token)  # type: ignore[arg-type]
    except ValueError:
        raise _fail("%s is not a number: %r" % (what, token), line) from None


def _opt_str(token: Optional[str]) -> Optional[str]:
    return None if _is_na(token) else token.strip()  # type: ignore[union-attr]


def davinci_path(phy_id: Optional[int]) -> Optional[str]:
    """The device node of a chip: ``/dev/davinci<physical id>`` (see module docs)."""
    return None if phy_id is None else "/dev/davinci%d" % phy_id


# ----------------------------------------------------------------- npu-smi info table


def _cells(raw: str) -> Optional[List[str]]:
    """Cells of a ``| a | b |`` row without the outer bars, or None for other lines."""
    text = raw.strip()
    if len(text) < 2 or not (text.startswith("|") and text.endswith("|")):
        return None
    return [cell.strip() for cell in text[1:-1].split("|")]


def _is_border(raw: str) -> bool:
    return bool(_BORDER_RE.match(raw.strip()))


def _metric_columns(label_cell: str) -> List[Tuple[str, bool]]:
    """(chip key or label, is_pair) per column label of a metric header cell."""
    columns = []
    for label in _LABEL_RE.findall(label_cell):
        key = _METRIC_KEYS.get(label, label)
        columns.append((key, "-Usage(" in label))
    return columns


class _Layout:
    """Which cells of a chip's two rows hold what, read from the table header."""

    def __init__(self, first: Line, second: Line) -> None:
        head1, head2 = _cells(first[1]), _cells(second[1])
        if head1 is None or head2 is None or len(head1) < 3 or len(head1) != len(head2):
            raise _fail("npu-smi info header rows have an unexpected shape", first)
        self.width = len(head1)
        self.id_cells = self.width - 2
        if self.id_cells not in (1, 2):
            raise _fail("npu-smi info header has %d id cells, expected 1 or 2" % self.id_cells, first)
        if head1[-2] != "Health" or head2[-2] != "Bus-Id":
            raise _fail("npu-smi info header lacks the Health / Bus-Id columns", first)
        self.row1_columns = _metric_columns(head1[-1])
        self.row2_columns = _metric_columns(head2[-1])
        if not self.row1_columns or not self.row2_columns:
            raise _fail("npu-smi info header has no metric column labels", first)
        words = " ".join(head2[: self.id_cells]).split()
        unknown = [word for word in words if word not in _SECOND_ID_KEYS]
        if unknown:
            raise _fail("npu-smi info header has unknown id column %r" % unknown[0], second)
        self.second_ids = [_SECOND_ID_KEYS[word] for word in words]
        self.family = self._family(words)

    def _family(self, words: List[str]) -> str:
        """Layout family: a2 (910A/910B), a3 (Phy-ID), 310 (Device), a5 (split NPU ID)."""
        if self.id_cells == 2:
            return "a5"
        if "Phy-ID" in words:
            return "a3"
        if "Device" in words:
            return "310"
        return "a2"


def _find_header(lines: Sequence[Line]) -> Tuple[int, Dict[str, Optional[str]]]:
    """Index of the first header row, plus the versions of the banner above it."""
    banner: Dict[str, Optional[str]] = {"npu_smi_version": None, "driver_version": None}
    for index, (_number, raw) in enumerate(lines):
        cells = _cells(raw)
        if cells is None:
            continue
        if len(cells) == 1:
            match = _BANNER_RE.match(cells[0])
            if match:
                banner = {"npu_smi_version": match.group("tool"), "driver_version": match.group("driver")}
            continue
        if "Health" in cells:
            if index + 1 >= len(lines):
                raise _fail("npu-smi info header is cut short", lines[index])
            return index, banner
    raise _fail("no npu-smi info table header (NPU / Name / Health ... Bus-Id) found", _first_content(lines))


def _split_metrics(cell: str, columns: List[Tuple[str, bool]], line: Line) -> Dict[str, Any]:
    """Values of a metric cell keyed by column; pairs become (used, total) strings."""
    values = _VALUE_RE.findall(cell)
    if len(values) != len(columns):
        raise _fail("expected %d values under %s, found %d" % (len(columns), [c[0] for c in columns], len(values)), line)
    result: Dict[str, Any] = {}
    for (key, is_pair), value in zip(columns, values):
        if is_pair != ("/" in value):
            raise _fail("value %r does not fit column %s" % (value, key), line)
        result[key] = tuple(part.strip() for part in value.split("/")) if is_pair else value
    return result


def _pair(values: Dict[str, Any], key: str, line: Line) -> Tuple[Optional[int], Optional[int]]:
    pair = values.get(key)
    if pair is None:
        return None, None
    return _opt_int(pair[0], key + " used", line), _opt_int(pair[1], key + " total", line)


def _memory(values: Dict[str, Any], line: Line) -> Dict[str, Any]:
    """Device memory of a chip: HBM where the chip has it, else DDR (310 family)."""
    ddr_used, ddr_total = _pair(values, "ddr", line)
    hbm_used, hbm_total = _pair(values, "hbm", line)
    use_hbm = "hbm" in values and (hbm_total is None or hbm_total > 0 or not ddr_total)
    if use_hbm:
        return {"memory_kind": "HBM", "memory_used_mb": hbm_used, "memory_total_mb": hbm_total}
    return {"memory_kind": "DDR", "memory_used_mb": ddr_used, "memory_total_mb": ddr_total}


def _row_cells(layout: _Layout, line: Line, what: str) -> List[str]:
    cells = _cells(line[1])
    if cells is None or len(cells) != layout.width:
        raise _fail("%s has %s cells, the header has %d" % (what, len(cells or ()), layout.width), line)
    return cells


def _chip_identity(layout: _Layout, cells1: List[str], cells2: List[str], row1: Line, row2: Line) -> Dict[str, Any]:
    """NPU id and name (first row), chip / phy / logic id (second row, per header words)."""
    if layout.id_cells == 1:
        words = cells1[0].split()
        npu_token, name = (words[0], " ".join(words[1:])) if words else ("", "")
    else:
        npu_token, name = cells1[0], cells1[1]
    if not name:
        raise _fail("chip row has no chip name", row1)
    chip: Dict[str, Any] = {"npu_id": _int(npu_token, "NPU id", row1), "chip_id": None, "logic_id": None, "phy_id": None, "name": name}
    id_words = " ".join(cells2[: layout.id_cells]).split()
    if len(id_words) != len(layout.second_ids):
        raise _fail("expected %d id values (%s), found %r" % (len(layout.second_ids), layout.second_ids, id_words), row2)
    for key, token in zip(layout.second_ids, id_words):
        chip[key] = _opt_int(token, key, row2)
    return chip


def _chip_from_rows(layout: _Layout, row1: Line, row2: Line) -> Dict[str, Any]:
    """One chip from its two table rows (NPU/Name/Health/..., Chip/Bus-Id/...)."""
    cells1 = _row_cells(layout, row1, "chip row")
    cells2 = _row_cells(layout, row2, "second chip row")
    chip = _chip_identity(layout, cells1, cells2, row1, row2)
    first = _split_metrics(cells1[-1], layout.row1_columns, row1)
    second = _split_metrics(cells2[-1], layout.row2_columns, row2)
    chip["health"] = _opt_str(cells1[-2])
    chip["power_w"] = _opt_float(first.get("power_w"), "power", row1)
    chip["temp_c"] = _opt_int(first.get("temp_c"), "temperature", row1)
    chip["hugepages_used"], chip["hugepages_total"] = _pair(first, "hugepages", row1)
    chip["bus_id"] = _opt_str(cells2[-2])
    chip["aicore_pct"] = _opt_int(second.get("aicore_pct"), "AICore usage", row2)
    chip.update(_memory(second, row2))
    chip["processes"] = None
    return chip


class _ProcessTable:
    """The process part of the table: rows per (NPU, chip) and NPUs reported idle."""

    def __init__(self) -> None:
        self.header: Optional[List[str]] = None
        self.rows: List[Tuple[Line, int, Optional[int], Dict[str, Any]]] = []
        self.idle: Dict[int, Line] = {}

    def set_header(self, cells: List[str], line: Line) -> None:
        self.header = cells
        lowered = [cell.lower() for cell in cells]
        try:
            self.pid_index = lowered.index("process id")
        except ValueError:
            raise _fail("process table header has no 'Process id' column", line) from None
        self.name_index = next((i for i, c in enumerate(lowered) if c.startswith("process name")), None)
        self.mem_index = next((i for i, c in enumerate(lowered) if c.startswith("process memory")), None)
        if self.pid_index == 0 or self.name_index is None or self.mem_index is None:
            raise _fail("process table header lacks the NPU / name / memory columns", line)
        self.bytes = "(b)" in lowered[self.mem_index]

    def add_row(self, cells: List[str], line: Line) -> None:
        if self.header is None:
            raise _fail("process row before the process table header", line)
        if len(cells) != len(self.header):
            raise _fail("process row has %d cells, the header has %d" % (len(cells), len(self.header)), line)
        ids = " ".join(cells[: self.pid_index]).split()
        if len(ids) not in (1, 2):
            raise _fail("process row does not start with NPU and chip ids", line)
        npu_id = _int(ids[0], "NPU id", line)
        chip_id = _int(ids[1], "chip id", line) if len(ids) == 2 else None
        memory = _opt_int(cells[self.mem_index], "process memory", line)
        if memory is not None and self.bytes:
            memory //= 1024 * 1024
        entry = {
            "pid": _int(cells[self.pid_index], "process id", line),
            "name": _opt_str(cells[self.name_index]),
            "memory_mb": memory,
        }
        self.rows.append((line, npu_id, chip_id, entry))

    def add_idle(self, npu_id: int, line: Line) -> None:
        self.idle[npu_id] = line


def _is_process_header(cells: List[str]) -> bool:
    return any(cell.lower() == "process id" for cell in cells)


class _TableReader:
    """Walk the lines after the header: chip row pairs, then the process table."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.chips: List[Dict[str, Any]] = []
        self.processes = _ProcessTable()
        self.pending: Optional[Line] = None
        self.last_kind = "border"
        self.noise: Optional[Line] = None
        self.in_processes = False
        self.elided = False
        # The first border after the last chip's second row: "=" ends an NPU, "-" is the
        # border between two chips of one NPU (A3 dies, 300I Duo chips), so another chip
        # of that NPU must follow. Every sample ends its chip rows with "=".
        self.after_chip: Optional[Tuple[str, Line]] = None

    def feed(self, line: Line) -> None:
        text = line[1].strip()
        if not text:
            self._blank(line)
        elif text == "...":
            self._elision(line)
        elif _is_border(text):
            self._border(line)
        else:
            cells = _cells(text)
            if cells is None:
                self._noise(line)
            else:
                if self.noise is not None:
                    raise _fail("text inside the npu-smi table", self.noise)
                self._row(cells, line)

    def _blank(self, line: Line) -> None:
        if self.pending is not None:
            raise _fail("chip row is cut short: its second line is missing", self.pending)

    def _elision(self, line: Line) -> None:
        """A literal "..." that an author put in place of rows (kept in the corpus)."""
        self._blank(line)
        self.elided = True
        self.last_kind = "elision"

    def _border(self, line: Line) -> None:
        if self.pending is not None:
            raise _fail("chip row is cut short: its second line is missing", self.pending)
        if self.noise is not None:
            raise _fail("text inside the npu-smi table", self.noise)
        if self.last_kind == "row2":
            self.after_chip = ("=" if "=" in line[1] else "-", line)
        self.last_kind = "border"

    def _check_npu_complete(self) -> None:
        """Chip rows that end with the border between two chips of one NPU lack that NPU's next chip."""
        if not self.in_processes and self.after_chip is not None and self.after_chip[0] == "-" and self.chips:
            last = self.chips[-1]
            raise _fail(
                "chip rows end with the border between two chips of NPU %s (after chip %s): the rest of that NPU is "
                "missing, so the output was cut (truncated?)" % (last["npu_id"], last["chip_id"]),
                self.after_chip[1],
            )

    def _noise(self, line: Line) -> None:
        """A line that is not part of a table: fine after the table, fatal inside it."""
        if self.pending is not None:
            raise _fail("chip row is cut short: its second line is missing", self.pending)
        if self.noise is None:
            self.noise = line

    def _row(self, cells: List[str], line: Line) -> None:
        idle = _IDLE_RE.match(cells[0]) if len(cells) == 1 else None
        if idle:
            self._leave_chips(line)
            self.processes.add_idle(int(idle.group(1)), line)
            self.last_kind = "idle"
        elif _is_process_header(cells):
            self._leave_chips(line)
            self.processes.set_header(cells, line)
            self.last_kind = "process-header"
        elif self.in_processes:
            self.processes.add_row(cells, line)
            self.last_kind = "process"
        elif self.pending is None:
            self.pending = line
            self.last_kind = "row1"
        else:
            self.chips.append(_chip_from_rows(self.layout, self.pending, line))
            self.pending = None
            self.last_kind = "row2"

    def _leave_chips(self, line: Line) -> None:
        if self.pending is not None:
            raise _fail("chip row is cut short: its second line is missing", self.pending)
        if not self.in_processes and self.last_kind == "row2":
            raise _fail("chip rows end without a border line", line)
        self._check_npu_complete()
        self.in_processes = True

    def finish(self, last: Line) -> None:
        if self.pending is not None:
            raise _fail("output ends inside a chip row (truncated?)", self.pending)
        if not self.chips:
            raise _fail("npu-smi info table has no chip rows", last)
        if self.last_kind in ("row2", "process", "process-header"):
            raise _fail("output ends before the closing border of the table (truncated?)", last)
        self._check_npu_complete()


def _attach_processes(chips: List[Dict[str, Any]], table: _ProcessTable, elided: bool) -> None:
    """Give each chip its process list; None when the output did not report its NPU.

    Process lines of NPUs without chip rows are an error, unless an author elided
    rows with "..." (then both tables miss the same NPUs and those lines are dropped).
    """
    by_npu: Dict[int, List[Dict[str, Any]]] = {}
    for chip in chips:
        by_npu.setdefault(chip["npu_id"], []).append(chip)
    reported = set()
    for npu_id, line in table.idle.items():
        if npu_id not in by_npu and not elided:
            raise _fail("process table reports NPU %d, which has no chip rows" % npu_id, line)
        reported.add(npu_id)
    for line, npu_id, chip_id, entry in table.rows:
        if npu_id not in by_npu and elided:
            continue
        chip = _process_owner(by_npu.get(npu_id, []), npu_id, chip_id, line)
        reported.add(npu_id)
        if chip["processes"] is None:
            chip["processes"] = []
        chip["processes"].append(entry)
    for chip in chips:
        if chip["npu_id"] in reported and chip["processes"] is None:
            chip["processes"] = []


def _process_owner(candidates: List[Dict[str, Any]], npu_id: int, chip_id: Optional[int], line: Line) -> Dict[str, Any]:
    matching = [chip for chip in candidates if chip["chip_id"] == chip_id or chip["chip_id"] is None]
    if len(matching) != 1:
        raise _fail("process row names NPU %d chip %s, which is not (uniquely) in the chip rows" % (npu_id, chip_id), line)
    return matching[0]


def parse_info(text: str) -> Dict[str, Any]:
    """Parse ``npu-smi info``: the banner versions and one entry per chip.

    Returns ``npu_smi_version`` and ``driver_version`` (None without a banner),
    ``layout`` (a2, a3, 310 or a5), ``process_table`` (whether processes were
    reported at all) and ``chips``.  A chip's ``processes`` is None when the output
    did not report its NPU (no process table, or the table was cut before it), and a
    list otherwise (empty for "No running processes found in NPU N").  ``NA`` and
    ``-`` values become None.  ``phy_id``/``logic_id`` are None where this table does
    not print them (see :func:`merge_chip_map`).
    """
    lines = _lines(text)
    header_index, banner = _find_header(lines)
    layout = _Layout(lines[header_index], lines[header_index + 1])
    reader = _TableReader(layout)
    last: Line = lines[header_index + 1]
    for line in lines[header_index + 2 :]:
        reader.feed(line)
        if line[1].strip():
            last = line
    reader.finish(last)
    _attach_processes(reader.chips, reader.processes, reader.elided)
    for chip in reader.chips:
        chip["phy_id_source"] = "table" if chip["phy_id"] is not None else None
        chip["device"] = davinci_path(chip["phy_id"])
    return {
        "npu_smi_version": banner["npu_smi_version"],
        "driver_version": banner["driver_version"],
        "layout": layout.family,
        "process_table": reader.processes.header is not None or bool(reader.processes.idle),
        "elided": reader.elided,
        "chips": reader.chips,
    }


# ------------------------------------------------------------------------ info -m / -l


def _info_m_columns(line: Line) -> List[str]:
    labels = [label for label in re.split(r"\s{2,}|\t", line[1].strip()) if label]
    unknown = [label for label in labels if label not in _INFO_M_KEYS]
    if unknown or not labels or labels[-1] != "Chip Name" or "Chip Logic ID" not in labels:
        raise _fail("unexpected npu-smi info -m header", line)
    return [_INFO_M_KEYS[label] for label in labels]


def parse_info_m(text: str) -> Dict[str, Any]:
    """Parse ``npu-smi info -m``: the NPU id / chip id / logic id (/ phy id) map.

    Returns ``chips`` (rows with a logic id) and ``mcus`` (the board MCU rows, whose
    logic id is ``-``).  A3 adds a ``Chip Phy-ID`` column; elsewhere ``phy_id`` is None.
    """
    lines = _lines(text)
    header_at = next((i for i, (_n, raw) in enumerate(lines) if "Chip Logic ID" in raw), None)
    if header_at is None:
        raise _fail("no npu-smi info -m header (NPU ID / Chip ID / Chip Logic ID) found", _first_content(lines))
    keys = _info_m_columns(lines[header_at])
    chips, mcus = [], []
    for line in lines[header_at + 1 :]:
        words = line[1].split()
        if not words:
            continue
        if len(words) < len(keys):
            raise _fail("npu-smi info -m row has %d fields, expected %d" % (len(words), len(keys)), line)
        entry: Dict[str, Any] = {"phy_id": None}
        for key, token in zip(keys[:-1], words):
            entry[key] = _opt_int(token, key, line)
        entry["name"] = " ".join(words[len(keys) - 1 :])
        if entry["npu_id"] is None or entry["chip_id"] is None:
            raise _fail("npu-smi info -m row has no NPU or chip id", line)
        (chips if entry["logic_id"] is not None else mcus).append(entry)
    if not chips:
        raise _fail("npu-smi info -m lists no chips", lines[header_at])
    return {"chips": chips, "mcus": mcus}


def _key_value_sections(text: str) -> List[List[Tuple[Line, str, str]]]:
    """Blank-line separated ``key : value`` sections (TAB, 8-space or no indent).

    A line whose key is empty (``<indent>: more text``) continues the previous value,
    as the ``Error Information`` of ``-t health`` does.
    """
    sections: List[List[Tuple[Line, str, str]]] = [[]]
    for line in _lines(text):
        stripped = line[1].strip()
        if not stripped:
            if sections[-1]:
                sections.append([])
            continue
        key, colon, value = stripped.partition(":")
        if not colon:
            raise _fail("expected 'key : value'", line)
        key, value = key.strip(), value.strip()
        if not key:
            if not any(sections):
                raise _fail("continuation line before any key", line)
            target = sections[-1] if sections[-1] else sections[-2]
            previous = target[-1]
            target[-1] = (previous[0], previous[1], previous[2] + "\n" + value)
            continue
        sections[-1].append((line, key, value))
    return [section for section in sections if section]


def _section_dict(section: List[Tuple[Line, str, str]]) -> Dict[str, str]:
    return {key: value for _line, key, value in section}


def parse_info_type(text: str) -> Dict[str, Any]:
    """Generic ``npu-smi info -t <type> -i N`` (board, common, temp, power, ...).

    Returns ``npu_id`` / ``chip_count`` (None when not printed) and ``sections``: one
    dict per blank-line separated block, values as printed.
    """
    sections = _key_value_sections(text)
    head = _section_dict(sections[0])
    first_line = sections[0][0][0]
    return {
        "npu_id": _opt_int(head.get("NPU ID"), "NPU ID", first_line),
        "chip_count": _opt_int(head.get("Chip Count"), "Chip Count", first_line),
        "sections": [_section_dict(section) for section in sections],
    }


def parse_info_l(text: str) -> Dict[str, Any]:
    """Parse ``npu-smi info -l``: ``total_count`` and ``npus`` [{npu_id, chip_count}]."""
    sections = _key_value_sections(text)
    total: Optional[int] = None
    npus: List[Dict[str, Any]] = []
    for section in sections:
        for line, key, value in section:
            if key == "Total Count":
                total = _int(value, "Total Count", line)
            elif key == "NPU ID":
                npus.append({"npu_id": _int(value, "NPU ID", line), "chip_count": None})
            elif key == "Chip Count" and npus:
                npus[-1]["chip_count"] = _int(value, "Chip Count", line)
    first = sections[0][0][0]
    if total is None:
        raise _fail("npu-smi info -l has no 'Total Count'", first)
    if total != len(npus) or any(npu["chip_count"] is None for npu in npus):
        last = sections[-1][-1][0]
        raise _fail("npu-smi info -l lists %d NPUs with chip counts, 'Total Count' says %d" % (len(npus), total), last)
    return {"total_count": total, "npus": npus}


def _chip_sections(text: str) -> Tuple[Dict[str, str], List[Tuple[Line, Dict[str, str]]]]:
    """Header block (NPU ID, Chip Count) and the per-chip blocks of ``-t memory|usages``."""
    sections = _key_value_sections(text)
    head = _section_dict(sections[0])
    chips = []
    for index, section in enumerate(sections):
        values = _section_dict(section)
        if index == 0 and "Chip Count" in values:
            continue
        if values.get("Chip Name", "").lower() == "mcu":
            continue
        chips.append((section[0][0], values))
    if not chips:
        raise _fail("no chip section found", sections[-1][-1][0])
    return head, chips


def _capacity(values: Dict[str, str], line: Line) -> Dict[str, Any]:
    ddr = _opt_int(values.get("DDR Capacity(MB)", values.get("Memory Capacity(MB)")), "DDR capacity", line)
    hbm = _opt_int(values.get("HBM Capacity(MB)"), "HBM capacity", line)
    kind = "HBM" if hbm else "DDR"
    return {"memory_kind": kind, "memory_total_mb": hbm if hbm else ddr, "ddr_total_mb": ddr, "hbm_total_mb": hbm}


def parse_memory(text: str) -> Dict[str, Any]:
    """Parse ``npu-smi info -t memory -i N``: capacity per chip (HBM if any, else DDR)."""
    head, sections = _chip_sections(text)
    first = sections[0][0]
    chips = []
    for line, values in sections:
        chip = {"chip_id": _opt_int(values.get("Chip ID"), "Chip ID", line)}
        chip.update(_capacity(values, line))
        chip["hbm_clock_mhz"] = _opt_int(values.get("HBM Clock Speed(MHz)"), "HBM clock", line)
        chip["hbm_temp_c"] = _opt_int(values.get("HBM Temperature(C)"), "HBM temperature", line)
        chips.append(chip)
    return {"npu_id": _opt_int(head.get("NPU ID"), "NPU ID", first), "chips": chips}


_USAGE_KEYS = {
    "aicore_pct": "Aicore Usage Rate(%)",
    "aivector_pct": "Aivector Usage Rate(%)",
    "aicpu_pct": "Aicpu Usage Rate(%)",
    "ctrlcpu_pct": "Ctrlcpu Usage Rate(%)",
    "npu_util_pct": "NPU Utilization(%)",
    "hugepages_total": "DDR Hugepages Total(page)",
    "hugepages_usage_pct": "DDR Hugepages Usage Rate(%)",
}


def parse_usages(text: str) -> Dict[str, Any]:
    """Parse ``npu-smi info -t usages -i N``: capacity and usage rates per chip."""
    head, sections = _chip_sections(text)
    first = sections[0][0]
    chips = []
    for line, values in sections:
        chip: Dict[str, Any] = {"chip_id": _opt_int(values.get("Chip ID"), "Chip ID", line)}
        chip.update(_capacity(values, line))
        rate = "HBM Usage Rate(%)" if chip["memory_kind"] == "HBM" else "DDR Usage Rate(%)"
        chip["memory_usage_pct"] = _opt_int(values.get(rate, values.get("Memory Usage Rate(%)")), rate, line)
        for key, label in _USAGE_KEYS.items():
            alternative = label.replace("DDR ", "")
            chip[key] = _opt_int(values.get(label, values.get(alternative)), label, line)
        chips.append(chip)
    return {
        "npu_id": _opt_int(head.get("NPU ID"), "NPU ID", first),
        "chip_count": _opt_int(head.get("Chip Count"), "Chip Count", first),
        "chips": chips,
    }


def parse_health(text: str) -> Dict[str, Any]:
    """Parse ``npu-smi info -t health -i N -c C``: status, error codes, messages."""
    sections = _key_value_sections(text)
    values: Dict[str, str] = {}
    for section in sections:
        values.update(_section_dict(section))
    first = sections[0][0][0]
    if "Health Status" not in values:
        raise _fail("no 'Health Status' in npu-smi health output", first)
    codes = values.get("Error Code", "NA")
    info = values.get("Error Information", "NA")
    return {
        "health": _opt_str(values["Health Status"]),
        "error_codes": [] if _is_na(codes) else codes.split(),
        "error_information": [] if _is_na(info) else [part for part in info.split("\n") if part],
    }


def parse_phyid_remap(text: str) -> Dict[str, int]:
    """Parse ``npu-smi info -t phyid-remap -p N`` (physical id -> logic/NPU/chip id)."""
    sections = _key_value_sections(text)
    values = {key: (line, value) for section in sections for line, key, value in section}
    result = {}
    for key, label in (("phy_id", "Chip Physical ID"), ("logic_id", "Chip Logic ID"), ("npu_id", "NPU ID"), ("chip_id", "Chip ID")):
        if label not in values:
            raise _fail("npu-smi phyid-remap output has no %r" % label, sections[0][0][0])
        line, value = values[label]
        result[key] = _int(value, label, line)
    return result


# ------------------------------------------------------------------- merging outputs


def merge_chip_map(chips: List[Dict[str, Any]], info_m: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Fill logic ids (and A3 phy ids) of table chips from ``npu-smi info -m``.

    ``info -m`` is authoritative for the logic id (it labels the column "Chip Logic
    ID"); both outputs must list the same chips, else :class:`NpuSmiMismatchError`
    (a table cut short, or chips that changed between the two calls).
    """
    by_npu: Dict[int, List[Dict[str, Any]]] = {}
    for entry in info_m["chips"]:
        by_npu.setdefault(entry["npu_id"], []).append(entry)
    merged, used = [], set()
    for chip in chips:
        entry = _map_entry(chip, by_npu.get(chip["npu_id"], []))
        used.add((entry["npu_id"], entry["chip_id"]))
        merged.append(_merge_one(chip, entry))
    missing = [(e["npu_id"], e["chip_id"]) for e in info_m["chips"] if (e["npu_id"], e["chip_id"]) not in used]
    if missing:
        raise NpuSmiMismatchError("npu-smi info -m lists chips (NPU, chip) %s that npu-smi info does not show" % missing)
    return merged


def _map_entry(chip: Dict[str, Any], entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    if chip["chip_id"] is None and len(entries) == 1:
        return entries[0]
    for entry in entries:
        if entry["chip_id"] == chip["chip_id"]:
            return entry
    raise NpuSmiMismatchError("npu-smi info shows NPU %s chip %s, which npu-smi info -m does not list" % (chip["npu_id"], chip["chip_id"]))


def _merge_one(chip: Dict[str, Any], entry: Dict[str, Any]) -> Dict[str, Any]:
    merged = dict(chip)
    merged["chip_id"] = entry["chip_id"]
    merged["logic_id"] = entry["logic_id"]
    if entry["phy_id"] is not None:
        if chip["phy_id"] is not None and chip["phy_id"] != entry["phy_id"]:
            raise NpuSmiMismatchError(
                "NPU %s chip %s: npu-smi info says Phy-ID %s, info -m says %s"
                % (chip["npu_id"], entry["chip_id"], chip["phy_id"], entry["phy_id"])
            )
        if chip["phy_id"] is None:
            merged["phy_id"], merged["phy_id_source"] = entry["phy_id"], "info -m"
    merged["device"] = davinci_path(merged["phy_id"])
    return merged


def apply_phyid_remap(chips: List[Dict[str, Any]], remaps: Iterable[Dict[str, int]]) -> List[Dict[str, Any]]:
    """Set phy ids (and device paths) from ``phyid-remap`` answers, matched by NPU/chip id.

    A remap that contradicts a logic or phy id already known raises
    :class:`NpuSmiMismatchError`; chips without a remap keep what they had.
    """
    by_key = {}
    for remap in remaps:
        by_key[(remap["npu_id"], remap["chip_id"])] = remap
    result = []
    for chip in chips:
        remap = by_key.get((chip["npu_id"], chip["chip_id"]))
        updated = dict(chip)
        if remap is not None:
            _check_remap(updated, remap)
            if updated["phy_id"] is None:
                updated["phy_id"], updated["phy_id_source"] = remap["phy_id"], "phyid-remap"
            updated["device"] = davinci_path(updated["phy_id"])
        result.append(updated)
    return result


def _check_remap(chip: Dict[str, Any], remap: Dict[str, int]) -> None:
    for key in ("logic_id", "phy_id"):
        if chip[key] is not None and chip[key] != remap[key]:
            raise NpuSmiMismatchError(
                "NPU %s chip %s: %s is %s, but phyid-remap -p %s says %s"
                % (chip["npu_id"], chip["chip_id"], key, chip[key], remap["phy_id"], remap[key])
            )


# ----------------------------------------------------------------- help and topology


def parse_info_help(text: str) -> Dict[str, List[str]]:
    """Parse ``npu-smi info -h``: the sub-commands and the ``-t`` types it supports.

    Lets a caller check for ``phyid-remap`` before relying on it.
    """
    lines = _lines(text)
    first = _first_content(lines)
    match = re.match(r"^Usage:\s+npu-smi info\s+<([^>]*)>", first[1].strip())
    if not match:
        raise _fail("not npu-smi info -h output", first)
    commands = [part.split()[0] for part in match.group(1).split("|") if part.strip()]
    types: List[str] = []
    collecting = False
    for _number, raw in lines:
        stripped = raw.strip()
        if stripped.startswith("type:"):
            collecting, stripped = True, stripped[len("type:") :]
        elif collecting and (not stripped or stripped.endswith(":") or stripped.startswith("-")):
            break
        if collecting:
            types.extend(word.strip(" ,.") for word in stripped.split(",") if word.strip(" ,."))
    if not types:
        raise _fail("npu-smi info -h lists no '-t' types", first)
    return {"commands": commands, "types": types}


def parse_topo(text: str) -> Dict[str, Any]:
    """Parse ``npu-smi info -t topo``: link type between NPUs and CPU affinity."""
    lines = _lines(text)
    header = _first_content(lines)
    names = header[1].split()
    if not names or not names[0].startswith("NPU") or names[-2:] != ["CPU", "Affinity"]:
        raise _fail("not npu-smi topology output", header)
    npus = names[:-2]
    links: Dict[str, Dict[str, str]] = {}
    affinity: Dict[str, str] = {}
    for line in lines[header[0] :]:
        words = line[1].split()
        if not words:
            break
        if len(words) != len(npus) + 2 or words[0] not in npus:
            raise _fail("topology row has %d fields, expected %d" % (len(words), len(npus) + 2), line)
        links[words[0]] = dict(zip(npus, words[1:-1]))
        affinity[words[0]] = words[-1]
    if set(links) != set(npus):
        raise _fail("topology matrix misses rows for %s" % sorted(set(npus) - set(links)), lines[-1])
    return {"npus": npus, "links": links, "cpu_affinity": affinity}
