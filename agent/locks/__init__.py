"""Lock drivers behind one interface (`agent.locks.base`): relay, Nuki over BLE, UniFi Access."""
