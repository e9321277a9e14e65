"""System test: tribune on a real Linux kernel under QEMU (docs/system-test.md)."""
