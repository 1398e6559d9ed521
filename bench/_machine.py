"""Machine facts printed at the top of each benchmark result."""

from __future__ import annotations

import os
import platform
import sqlite3
import time


def machine_lines() -> list[str]:
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
    ]
