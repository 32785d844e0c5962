"""The log path: caller-side capture, a bounded batched hand-off, and an orjson formatter on a listener thread."""
