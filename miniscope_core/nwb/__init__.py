"""The NWB file's layout, one part per kind of object; `layout.build_layout` puts them together.

`base` holds what every part shares; `devices`, `imaging`, `behavior` and `intervals` import it
(and `imaging`/`behavior` import `devices`), and `layout` imports the parts: no cycle.
"""
