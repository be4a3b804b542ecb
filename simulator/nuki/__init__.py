"""An emulated Nuki Smart Lock 3.0 (with a Nuki Keypad) on the virtual BLE radio."""
