"""Drivers: transports move bytes, codecs frame them, the device runtime drives a device."""
