"""Device drivers behind one interface per device kind (see `rig.drivers.base`)."""
