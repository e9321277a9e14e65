"""Physical lectern keys: keypads (Linux evdev) that drive the room like the touch panel.

- `source`: the evdev seam (`InputSource`, `InputHandle`, `RawEvent`), shared event reading
- `evdev_source`: the real source over python-evdev; `fake`: the tests' pipe-backed one
- `watch`: inotify on `/dev/input` (a 1 s poll where that is not possible)
- `keys`: debounce, press, long press and auto-repeat of one device's keys
- `service`: `KeyService`, started with the room by `tribune serve`
- `cli`: `tribune buttons list|listen`

The `[buttons]` schema is in `tribune/config.py`; the guide is docs/buttons.md.
"""
