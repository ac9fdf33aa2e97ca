# Copyright (c) npu.fleet engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Controller-side helper shared by the action plugins.

Action plugins hand values from ``hostvars`` and task arguments to the pure
module_utils code; those values arrive as ansible-core's lazy, tagged
containers, which must not leak into results, JSON or comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping


def plain(value):
    """Deep copy into plain dict/list/str/int/float/bool/None."""
    if isinstance(value, Mapping):
        return dict((str(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
